"""kubelet: does the kubelet answer ``/healthz`` with 200? (NPD's health-checker for kubelet)"""

from __future__ import annotations

from healthcheck import Condition, hookimpl
from healthcheck_plugins.component.checker import component_checker, http_probe

CONDITION = Condition(
    "KubeletUnhealthy",
    "KubeletUnhealthy",
    "KubeletIsHealthy",
    "kubelet on the node is functioning properly",
)

CHECKER = component_checker(
    "kubelet",
    component="kubelet",
    default_service="kubelet",
    description="kubelet /healthz on HOST_ADDRESS:KUBELET_PORT, with repair and log patterns",
    probe=http_probe("KUBELET_PORT", "10248", lambda ctx: "/healthz"),
    condition=CONDITION,
    npd_filename="health-checker-kubelet.json",
    npd_args=(
        "--component=kubelet",
        "--enable-repair=true",
        "--cooldown-time=1m",
        "--loopback-time=0",
        "--health-check-timeout=10s",
    ),
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
