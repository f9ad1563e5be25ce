"""cri: does the container runtime answer the CRI, as ``crictl pods --latest`` would?

Calls the RuntimeService over its gRPC unix socket from Python (no crictl needed): ListPodSandbox
(what NPD's ``crictl pods --latest`` asks) and Status, whose RuntimeReady condition must be true.
NetworkReady=false (no CNI configured yet) is logged but healthy unless
``--require-network-ready``: the kubelet already reports it, and killing the runtime does not fix
a missing CNI. With ``--use-crictl`` and an executable ``--crictl-path``, NPD's exact crictl
command is run instead.
"""

from __future__ import annotations

import os
import sys
import time

from healthcheck import Condition, Option, hookimpl
from healthcheck.sdk.duration import format_duration
from healthcheck.sdk.text import one_line
from healthcheck_plugins.component import criapi as cri
from healthcheck_plugins.component.checker import component_checker, probe_timeout

CONDITION = Condition(
    "ContainerRuntimeUnhealthy",
    "ContainerdUnhealthy",
    "ContainerRuntimeIsHealthy",
    "Container runtime on the node is functioning properly",
)


def _crictl_probe(ctx) -> str | None:
    # Here, not at the top: subprocess and selectors (run_program) are only for --use-crictl.
    from healthcheck.sdk.process import run_program

    opts = ctx.options
    argv = [
        opts.crictl_path,
        f"--timeout={format_duration(opts.cri_timeout)}",
        f"--runtime-endpoint={opts.cri_socket_path}",
        "pods",
        "--latest",
    ]
    result = run_program(argv, timeout=probe_timeout(ctx))
    if result.ok:
        return None
    if result.error:
        return result.error
    if result.timed_out:
        return f"{' '.join(argv)} timed out"
    detail = one_line(result.stderr.decode("utf-8", "replace"), 200)
    return f"crictl pods --latest exited {result.returncode}: {detail}"


def _said(condition) -> str:
    """A runtime condition's reason and message, as the runtime wrote them: bounded, one line."""
    return f"{one_line(condition.reason, 100)}: {one_line(condition.message, 200)}"


def _grpc_probe(ctx) -> str | None:
    opts = ctx.options
    endpoint = opts.cri_socket_path
    deadline = time.monotonic() + probe_timeout(ctx)

    def call_timeout() -> float:
        return max(0.001, min(opts.cri_timeout, deadline - time.monotonic()))

    try:
        with cri.RuntimeClient(endpoint) as client:
            client.list_pod_sandboxes(call_timeout())
            conditions = {c.type: c for c in client.status(call_timeout())}
    except cri.CriError as exc:
        return f"CRI at {endpoint}: {exc}"
    except ValueError as exc:  # a reply that is not the protobuf it should be
        return f"CRI at {endpoint}: malformed reply: {exc}"
    runtime = conditions.get("RuntimeReady")
    if runtime is None or not runtime.status:
        why = _said(runtime) if runtime else "condition missing"
        return f"CRI at {endpoint}: RuntimeReady is not true ({why})"
    network = conditions.get("NetworkReady")
    if network is not None and not network.status:
        why = f"CRI at {endpoint}: NetworkReady is false ({_said(network)})"
        if opts.require_network_ready:
            return why
        print(f"cri: {why}", file=sys.stderr)
    return None


def probe(ctx) -> str | None:
    opts = ctx.options
    if opts.use_crictl:
        if os.access(opts.crictl_path, os.X_OK):
            return _crictl_probe(ctx)
        print(
            f"cri: {opts.crictl_path} is not executable; asking the CRI directly", file=sys.stderr
        )
    return _grpc_probe(ctx)


def validate(options) -> None:
    # NPD's IsValid: both must be set for cri.
    if not options.crictl_path:
        raise ValueError("--crictl-path must not be empty")
    if not options.cri_socket_path:
        raise ValueError("--cri-socket-path must not be empty")
    cri.socket_path(options.cri_socket_path)


CHECKER = component_checker(
    "cri",
    component="cri",
    default_service="containerd",
    description="the CRI runtime lists pod sandboxes and is RuntimeReady, with repair",
    probe=probe,
    options=[
        Option(
            "cri_socket_path",
            default="unix:///var/run/containerd/containerd.sock",
            help="the runtime's CRI endpoint (unix:///path)",
        ),
        Option(
            "crictl_path", default="/usr/bin/crictl", help="crictl, used only with --use-crictl"
        ),
        Option(
            "cri_timeout",
            type="duration",
            default=2.0,
            minimum=0.001,
            help="timeout of each CRI call",
        ),
        Option(
            "use_crictl",
            type="bool",
            default=False,
            help="run NPD's crictl command instead of calling the CRI directly (if crictl exists)",
        ),
        Option(
            "require_network_ready",
            type="bool",
            default=False,
            help="also treat NetworkReady=false as unhealthy",
        ),
    ],
    condition=CONDITION,
    needs_path="/var/run/containerd/containerd.sock",
    npd_filename="health-checker-containerd.json",
    npd_args=(
        "--component=cri",
        "--enable-repair=true",
        "--cooldown-time=2m",
        "--cri-timeout=10s",
        "--health-check-timeout=60s",
    ),
    validate=validate,
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
