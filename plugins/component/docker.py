"""docker: does dockerd list containers over its API socket, as ``docker ps`` would?

Asks the Engine API (``GET /containers/json``) on ``--docker-socket`` directly, so no docker CLI
is needed. The repair first sends SIGUSR1 to dockerd's main process (it dumps its goroutine
stacks for the post-mortem), then kills it, as NPD does.
"""

from __future__ import annotations

from healthcheck import Condition, Option, hookimpl
from healthcheck.sdk import http
from healthcheck_plugins.component.checker import component_checker, probe_timeout

CONDITION = Condition(
    "ContainerRuntimeUnhealthy",
    "DockerUnhealthy",
    "ContainerRuntimeIsHealthy",
    "Container runtime on the node is functioning properly",
)
MAX_LIST_BYTES = 32 << 20  # thousands of containers: read to the end, but not held
KEEP_BYTES = 4096  # all the probe looks at is the first non-blank byte


def probe(ctx) -> str | None:
    socket_path = ctx.options.docker_socket
    try:
        response = http.request(
            "GET",
            "/containers/json",
            unix_socket=socket_path,
            timeout=probe_timeout(ctx),
            max_body=MAX_LIST_BYTES,
            keep=KEEP_BYTES,
        )
    except http.HttpError as exc:
        return f"docker API at {socket_path}: {exc}"
    if response.status != 200:
        return f"docker API at {socket_path}: GET /containers/json: HTTP {response.status}"
    if not response.body.lstrip().startswith(b"["):
        return f"docker API at {socket_path}: GET /containers/json did not return a list"
    return None


CHECKER = component_checker(
    "docker",
    component="docker",
    default_service="docker",
    description="dockerd lists containers over its API socket, with repair and log patterns",
    probe=probe,
    options=[
        Option("docker_socket", default="/var/run/docker.sock", help="dockerd's API socket"),
    ],
    condition=CONDITION,
    needs_path="/var/run/docker.sock",
    npd_filename="health-checker-docker.json",
    npd_args=(
        "--component=docker",
        "--enable-repair=true",
        "--cooldown-time=2m",
        "--health-check-timeout=60s",
    ),
    signal_first="SIGUSR1",
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
