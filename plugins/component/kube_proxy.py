"""kube-proxy: does kube-proxy answer ``/livez`` (NPD master) or ``/healthz`` with 200?"""

from __future__ import annotations

from healthcheck import Condition, Option, hookimpl
from healthcheck_plugins.component.checker import component_checker, http_probe

CONDITION = Condition(
    "KubeProxyUnhealthy",
    "KubeProxyUnhealthy",
    "KubeProxyIsHealthy",
    "kube-proxy on the node is functioning properly",
)

CHECKER = component_checker(
    "kube-proxy",
    component="kube-proxy",
    default_service="kube-proxy",
    description="kube-proxy /livez on HOST_ADDRESS:KUBEPROXY_PORT, with repair and log patterns",
    probe=http_probe("KUBEPROXY_PORT", "10256", lambda ctx: ctx.options.kube_proxy_path),
    options=[
        Option(
            "kube_proxy_path",
            default="/livez",
            choices=("/livez", "/healthz"),
            help="endpoint to ask: /livez (NPD master) or /healthz (kube-proxy before 1.28, "
            "NPD v1.36 and older)",
        )
    ],
    condition=CONDITION,
    npd_filename="health-checker-kube-proxy.json",
    npd_args=(
        "--component=kube-proxy",
        "--enable-repair=true",
        "--cooldown-time=1m",
        "--health-check-timeout=10s",
    ),
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
