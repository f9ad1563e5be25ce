"""The component checker factory (kubelet, kube-proxy, docker, cri): NPD's health-checker.

A component checker is a *probe* (is the component answering?) wrapped in NPD's CheckHealth
(spec section 3): the probe, then the log-pattern check on every run (:mod:`.logmatch`), then
NPD's output line. The repair (``systemctl kill --kill-who=main``) is declared here and run by
the runner through :mod:`healthcheck.sdk.repair`'s shared policy. Each component's module only
adds its probe, its options and its NPD declaration; the HTTP components take
:func:`http_probe`, which checks its URL as Go would (:mod:`.gourl`).
"""

from __future__ import annotations

import os
import sys

from healthcheck import Checker, Condition, NpdMonitor, NpdRule, Option, Result
from healthcheck.sdk import systemd
from healthcheck.sdk.repair import REPAIR_OPTIONS, Repair
from healthcheck.sdk.text import LOG_LIMIT, one_line
from healthcheck_plugins.component.gourl import go_url_error
from healthcheck_plugins.component.logmatch import (
    ComponentError,
    check_log_patterns,
    compile_pattern,
    count_pattern_matches,
    parse_log_patterns,
    unit_name,
)

# compile_pattern, count_pattern_matches and parse_log_patterns are re-exported from logmatch:
# cmd/healthchecker.py, bench/health_checker.py and tests/test_go_parsing.py import them from here.
__all__ = [
    "ComponentError",
    "compile_pattern",
    "component_checker",
    "count_pattern_matches",
    "http_probe",
    "make_check",
    "parse_log_patterns",
    "probe_timeout",
]

# NPD's health-checker configs: every 10 s, killed after 3 min (spec 2.10).
NPD_INTERVAL = 10.0
NPD_TIMEOUT = 180.0
# Our own deadline fires first so that NPD gets our line, not its own timeout text.
CHECK_DEADLINE = 170.0


# -------------------------------------------------------------------------------- declaration


def common_options(component: str, default_service: str) -> list[Option]:
    """NPD health-checker flags every component takes, plus our repair and journal options."""
    return [
        Option(
            "service",
            type=systemd.unit_option,
            default="",
            aliases=("--systemd-service",),
            help=f"the systemd unit of the component (empty: {default_service})",
        ),
        *REPAIR_OPTIONS,
        Option(
            "loopback_time",
            type="duration",
            default=0.0,
            minimum=0,
            help="log-pattern window: at most this far back (0: since the service started)",
        ),
        Option(
            "health_check_timeout",
            type="duration",
            default=10.0,
            minimum=0,
            help=f"how long the {component} probe may take (0: HTTP probes wait until the "
            "check's own deadline, other probes fail at once, as NPD's)",
        ),
        Option(
            "log_pattern",
            type=parse_log_patterns,
            multiple=True,
            metavar="COUNT:REGEX",
            help="unhealthy when REGEX (RE2, case-insensitive) matches at least COUNT journal "
            "entries of the unit in the window; repeatable, comma-separated",
        ),
        Option("systemctl", default="systemctl", help="the systemctl binary"),
        Option(
            "journalctl",
            default="journalctl",
            help="journalctl, used where systemd-python is missing",
        ),
        Option(
            "journal_backend",
            default="auto",
            choices=("auto", "native", "journalctl"),
            help="how to read the journal: systemd-python (native), journalctl, or auto",
        ),
        Option(
            "journal_directory",
            default="",
            help="read journal files from this directory (empty: the system journal)",
        ),
    ]


def service_of(opts, default_service: str) -> str:
    """The unit: ``--service`` when given, else the component's default (NPD's SetDefaults)."""
    return opts.service or default_service


def _stderr(component: str, message: str) -> None:
    """One log line for NPD's log: a probe's or a pattern's text, bounded and on one line."""
    print(one_line(f"{component}: {message}", LOG_LIMIT), file=sys.stderr, flush=True)


def make_check(component: str, default_service: str, probe):
    """NPD's CheckHealth around ``probe(ctx) -> str | None`` (``None`` healthy, else why not).

    ``probe`` raises :class:`ComponentError` when health cannot be determined.
    """

    def check(ctx) -> Result:
        opts = ctx.options
        service = service_of(opts, default_service)
        try:
            if opts.health_check_timeout <= 0 and not getattr(probe, "zero_timeout_waits", False):
                # NPD runs docker and crictl under a context whose deadline has then passed.
                problem = "health-check-timeout is 0: the probe's deadline has already passed"
            else:
                problem = probe(ctx)
            log_problem = check_log_patterns(ctx, service)
        except ComponentError as exc:
            return Result.unknown(f"error checking {component} health: {exc}")
        if problem is None and log_problem is None:
            return Result.ok()
        for why in (problem, log_problem):
            if why is not None:
                _stderr(component, why)  # stdout is the protocol line; NPD logs stderr
        flag = "true" if opts.enable_repair else "false"
        return Result.problem(f"{component}:{service} was found unhealthy; repair flag : {flag}")

    return check


def systemd_repair(default_service: str, *, signal_first: str | None = None) -> Repair:
    """``systemctl kill --kill-who=main UNIT``, after ``--signal=<signal_first>`` when given."""

    def uptime(ctx) -> float:
        return systemd.unit_uptime(
            service_of(ctx.options, default_service), systemctl=ctx.options.systemctl
        )

    def action(ctx) -> None:
        service = service_of(ctx.options, default_service)
        if signal_first:
            try:
                systemd.kill_main(service, signal=signal_first, systemctl=ctx.options.systemctl)
            except systemd.SystemdError as exc:  # the dump is a courtesy; the kill is the repair
                _stderr(default_service, f"{signal_first} to {service} failed: {exc}")
        systemd.kill_main(service, systemctl=ctx.options.systemctl)

    def describe(ctx) -> str:
        service = service_of(ctx.options, default_service)
        first = (
            f"send {signal_first} to the main process of {service}, then " if signal_first else ""
        )
        return f"{first}systemctl kill --kill-who=main {service}"

    return Repair(
        action,
        uptime=uptime,
        target=lambda ctx: unit_name(service_of(ctx.options, default_service)),
        describe=describe,
    )


def component_checker(
    name: str,
    *,
    component: str,
    default_service: str,
    description: str,
    probe,
    options=(),
    condition: Condition,
    npd_filename: str,
    npd_args,
    signal_first: str | None = None,
    validate=None,
    needs_path: str = "/var/lib/kubelet",
) -> Checker:
    """A :class:`Checker` for one component, declared as NPD's health-checker config declares it.

    ``needs_path`` tells ``healthcheck status`` whether the component belongs on this machine.
    """
    rule = NpdRule(condition, npd_args, program="health-checker", timeout=NPD_TIMEOUT)
    return Checker(
        name,
        description=description,
        check=make_check(component, default_service, probe),
        condition=condition,
        options=[*common_options(component, default_service), *options],
        interval=NPD_INTERVAL,
        timeout=CHECK_DEADLINE,
        repair=systemd_repair(default_service, signal_first=signal_first),
        validate=validate,
        applies=lambda: None if os.path.exists(needs_path) else f"{needs_path} does not exist",
        npd_monitors=[
            NpdMonitor(
                npd_filename,
                source="health-checker",
                rules=[rule],
                interval=NPD_INTERVAL,
                timeout=NPD_TIMEOUT,
                concurrency=1,
            )
        ],
    )


def probe_timeout(ctx) -> float:
    """``--health-check-timeout``, cut to what is left of the check's deadline."""
    return max(0.001, min(ctx.options.health_check_timeout, ctx.remaining()))


def http_probe(port_env: str, default_port: str, path_of):
    """A probe: healthy only on a final HTTP 200 from ``http://<HOST_ADDRESS>:<$port_env><path>``.

    As NPD's Go client: redirects are followed (as Go's client), the body is never read, and a
    transport error or any other status is unhealthy. A URL Go cannot parse (a bad
    ``HOST_ADDRESS`` or port) is an error, with Go's words, as in NPD. A
    ``--health-check-timeout`` of 0 means no timeout of the probe's own (Go's client), so the
    check's deadline bounds it.
    """

    def probe(ctx) -> str | None:
        # Here, not at the top: the cri checker shares this module and never speaks HTTP.
        from healthcheck.sdk import http

        host = os.environ.get("HOST_ADDRESS") or "localhost"
        port = os.environ.get(port_env) or default_port
        url = f"http://{http.join_host_port(host, port)}{path_of(ctx)}"
        parse_error = go_url_error(url)
        if parse_error is not None:
            raise ComponentError(parse_error)
        if ctx.options.health_check_timeout <= 0:
            timeout = max(0.001, ctx.remaining())
        else:
            timeout = probe_timeout(ctx)
        try:
            status, reason = http.probe_status(url, timeout=timeout)
        except http.HttpError as exc:
            return one_line(f"GET {url}: {exc}", LOG_LIMIT)
        if status != 200:
            return one_line(f"GET {url}: HTTP {status} {reason}", LOG_LIMIT)
        return None

    probe.zero_timeout_waits = True
    return probe
