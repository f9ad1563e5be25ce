"""kubelet-example: the built-in ``kubelet`` check, rewritten as a third-party plugin.

It uses only what any plugin may use: the names of ``healthcheck`` and the SDK modules
``healthcheck.sdk.*`` (docs/sdk.md):

- :func:`healthcheck.sdk.http.probe_status` asks ``/healthz`` as NPD's Go client does (redirects
  followed, body unread), within one deadline;
- :class:`healthcheck.sdk.repair.Repair` declares the repair, ``systemctl restart`` of the unit
  (run with :func:`healthcheck.run_program`); the host's shared policy decides when it runs
  (``--enable-repair``, the unit up longer than ``--cooldown-time``, at most once per cooldown,
  never in a dry run), with the flags of :data:`healthcheck.sdk.repair.REPAIR_OPTIONS`;
- :mod:`healthcheck.sdk.systemd` checks the unit name and reads the unit's uptime.
"""

from __future__ import annotations

import os

from healthcheck import Checker, Condition, Option, Result, hookimpl
from healthcheck.sdk import http, systemd
from healthcheck.sdk.repair import REPAIR_OPTIONS, Repair

NAME = "kubelet-example"
CONDITION = Condition(
    "KubeletExampleUnhealthy",
    "KubeletExampleUnhealthy",
    "KubeletExampleIsHealthy",
    "kubelet answers /healthz",
)


def url_option(text: str) -> str:
    """A ``--url`` value: empty (from ``HOST_ADDRESS`` and ``KUBELET_PORT``) or ``http://...``.

    A ValueError here is bad input: the host prints its one line and exits 2.
    """
    if text:
        try:
            http.split_url(text)
        except http.HttpError as exc:
            raise ValueError(str(exc)) from None
    return text


def healthz_url(ctx) -> str:
    """``--url``, else ``http://$HOST_ADDRESS:$KUBELET_PORT/healthz`` as the built-in asks."""
    if ctx.options.url:
        return ctx.options.url
    host = os.environ.get("HOST_ADDRESS") or "localhost"
    port = os.environ.get("KUBELET_PORT") or "10248"
    return f"http://{http.join_host_port(host, port)}/healthz"


def check(ctx) -> Result:
    """Healthy only on a final HTTP 200 within ``--health-check-timeout``."""
    url = healthz_url(ctx)
    timeout = max(0.001, min(ctx.options.health_check_timeout, ctx.remaining()))
    try:
        status, reason = http.probe_status(url, timeout=timeout)
    except http.HttpError as exc:  # refused, timed out, not HTTP, a bad HOST_ADDRESS
        return Result.problem(f"kubelet: {exc}")
    if status != 200:
        return Result.problem(f"kubelet /healthz: HTTP {status} {reason}")
    return Result.ok("kubelet is healthy")


def unit_uptime(ctx) -> float:
    """Seconds the unit has been up: the policy repairs only a unit up longer than the cooldown."""
    return systemd.unit_uptime(ctx.options.service, systemctl=ctx.options.systemctl)


def restart(ctx) -> None:
    """``systemctl restart -- UNIT``; raises when it fails (the policy logs it)."""
    # Here, not at the top: running programs loads subprocess, which only a repair needs.
    from healthcheck import run_program

    argv = [ctx.options.systemctl, "restart", "--", ctx.options.service]
    result = run_program(argv, timeout=systemd.COMMAND_TIMEOUT)
    if not result.ok:
        raise RuntimeError(result.error or f"systemctl restart exited {result.returncode}")


REPAIR = Repair(
    restart,
    uptime=unit_uptime,
    target=lambda ctx: ctx.options.service,
    describe=lambda ctx: f"systemctl restart {ctx.options.service}",
)

CHECKER = Checker(
    NAME,
    description="kubelet /healthz answers 200 (an example plugin), restarting the unit if not",
    check=check,
    condition=CONDITION,
    options=[
        Option("url", type=url_option, default="", help="the healthz URL (empty: the kubelet's)"),
        Option(
            "health_check_timeout",
            type="duration",
            default=10.0,
            minimum=0.001,
            help="how long the probe may take",
        ),
        Option(
            "service",
            type=systemd.check_unit_name,
            default="kubelet",
            help="the systemd unit to restart",
        ),
        Option("systemctl", default=systemd.DEFAULT_SYSTEMCTL, help="the systemctl binary"),
        *REPAIR_OPTIONS,
    ],
    interval=10.0,
    timeout=30.0,
    repair=REPAIR,
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
