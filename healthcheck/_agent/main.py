"""Wiring: config -> scheduler -> condition table -> reporter, metrics and the local server.

``run`` is what ``healthcheck agent`` calls. User errors raise :class:`AgentUsageError` (one
line, exit 2) before anything runs.

Exit codes of ``--once``: the worst check status as NPD's protocol has it (0 OK, 1 a problem,
2 unknown), unless something was not reported: then :data:`EXIT_NOT_REPORTED` (3), which wins
over every status, because a result the API server never got is lost to the cluster. Any code
but 0 and 1 still reads as "unknown" to an NPD-protocol consumer, and the shipped oneshot unit
counts 1 and 2 as success, so 3 is what makes its run fail.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from healthcheck._protocol import Status, worst

EVENT_COMPONENT = "healthcheck-agent"
SHUTDOWN_BUDGET = 5.0
# After SIGTERM the process ends by this many seconds whatever is stuck (a plugin's non-daemon
# thread or exit handler): the orderly path is bounded by SHUTDOWN_BUDGET, this is the floor
# under it.
SHUTDOWN_HARD_LIMIT = SHUTDOWN_BUDGET + 2.0
STARTUP_ADOPT_WAIT = 5.0
ONCE_FLUSH_BUDGET = 10.0
EXIT_NOT_REPORTED = 3


class AgentUsageError(Exception):
    """Bad flags or configuration: one line, exit 2."""


LOG_LINE_LIMIT = 4096  # bytes of one log line: room for every condition type we adopt


def log(message: str) -> None:
    """One line on stderr, whatever ``message`` holds (a plugin's result, a server's error)."""
    from healthcheck.sdk.text import one_line

    print(one_line(f"healthcheck agent: {message}", LOG_LINE_LIMIT), file=sys.stderr, flush=True)


NODE_NAME_MAX = 253


def node_name(flag: str | None) -> str:
    """The flag, then ``NODE_NAME``, then the hostname (NPD's order).

    The name goes into API paths, Event names and every log line, so it must be what Kubernetes
    allows for a node (a DNS-1123 subdomain): anything else is :class:`AgentUsageError`.
    """
    import re

    if flag:
        name, source = flag, "--node-name"
    elif os.environ.get("NODE_NAME"):
        name, source = os.environ["NODE_NAME"], "NODE_NAME"
    else:
        name, source = socket.gethostname(), "the hostname"
    label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    if len(name) > NODE_NAME_MAX or not re.fullmatch(rf"{label}(\.{label})*", name):
        from healthcheck.sdk.text import LOG_LIMIT, one_line

        shown = one_line(name, LOG_LIMIT, marker="…")
        raise AgentUsageError(
            f'node name "{shown}" (from {source}) is not a Kubernetes node name: lower-case '
            f"letters, digits, '-' and '.', at most {NODE_NAME_MAX}; pass --node-name NAME"
        )
    return name


def load(config_path: str):
    """Discover checkers and validate the config; :class:`AgentUsageError` on any problem."""
    from healthcheck import _host as host
    from healthcheck._agent.config import ConfigError, load_config

    catalog = host.discover()
    checkers = {name: loaded.checker for name, loaded in catalog.checkers.items()}
    try:
        return load_config(config_path, checkers)
    except ConfigError as exc:
        raise AgentUsageError(str(exc)) from None


class Agent:
    """One agent: everything the long-running and the ``--once`` paths share."""

    def __init__(self, config, api, node: str, *, clock=None, with_metrics: bool = True) -> None:
        from healthcheck._agent.clock import Clock
        from healthcheck._agent.conditions import ConditionTable
        from healthcheck._agent.events import EventCorrelator
        from healthcheck._agent.reporter import Reporter

        self.config = config
        self.clock = clock or Clock()
        self.table = ConditionTable(config.condition_types(), self.clock)
        api, spread = traffic_controls(api, node, config.traffic, self.clock)
        correlator = EventCorrelator(node, config.namespace, EVENT_COMPONENT, self.clock)
        self.reporter = Reporter(
            api,
            node,
            self.table,
            correlator,
            self.clock,
            heartbeat=config.heartbeat,
            namespace=config.namespace,
            log=log,
            spread=spread,
        )
        self._lock = threading.Lock()  # results arrive from many check threads at once
        self.remediation = None  # remediation.controller.Controller, started by run_forever
        self.metrics = None
        if with_metrics:
            from healthcheck._agent.metrics import Metrics

            self.metrics = Metrics(config.checks)
            self.metrics.stats.reporter = self.reporter

    def on_report(self, report) -> None:
        """One check's result: state machine, events, metrics, and a nudge to the reporter."""
        with self._lock:
            self._handle(report)

    def _handle(self, report) -> None:
        from healthcheck._agent.conditions import temporary_events

        spec, result = report.spec, report.result
        before = self.table.version
        if spec.permanent and self.reporter.hold_result(spec, result.status, result.message):
            events = []  # waits for the node's start-up read (healthcheck._agent.spread)
        elif spec.permanent:
            events = self.table.apply(spec, result.status, result.message)
        else:
            events = temporary_events(spec, result.status, result.message)
        if self.metrics is not None:
            self.metrics.observe(report)
            self.metrics.problems(events)
            self.metrics.conditions(self.table.snapshot()[1])
        if events:
            self.reporter.record(events)
        if self.table.version != before:
            self.reporter.changed()
        if self.remediation is not None:
            self.remediation.observe(report)
        if report.timed_out or result.status != Status.OK:
            log(f"{spec.name}: {result.status.name}: {result.message}")


def traffic_controls(api, node: str, settings, clock):
    """``(api behind the client-side rate limit, the node's Spread)`` from the traffic settings."""
    from healthcheck._agent.ratelimit import limited
    from healthcheck._agent.spread import Spread

    spread = Spread(
        node, settings.startup_spread, settings.change_spread, hold_read=settings.read_spread
    )
    return limited(api, settings.qps, settings.burst, clock), spread


def _bind_error(what: str, address, exc: OSError) -> AgentUsageError:
    return AgentUsageError(
        f"{what} address {address[0]}:{address[1]}: cannot listen: {exc.strerror or exc}"
    )


def run_once(agent: Agent) -> int:
    """``--once``: adopt, run every check once, report; the exit code as the module says."""
    from healthcheck._agent.scheduler import run_all_once

    agent.reporter.sync()  # reads the node first, so transitions start from its real status
    reports = run_all_once(agent.config.checks, agent.on_report, log)
    statuses = [r.result.status for r in reports]
    if len(reports) < len(agent.config.checks):
        statuses.append(Status.UNKNOWN)
    status = worst(statuses)
    reporter = agent.reporter
    if not reporter.flush(time.monotonic() + ONCE_FLUSH_BUDGET):
        log(
            f"could not report {reporter.pending()} (checks found {status.name}): "
            f"{reporter.last_error}"
        )
        return EXIT_NOT_REPORTED
    if reporter.events_refused:
        log(
            f"not reported: the API server refused {reporter.events_refused} event(s) "
            f"(checks found {status.name})"
        )
        return EXIT_NOT_REPORTED
    return int(status)


def run_forever(agent: Agent, stop: threading.Event, remediation=None) -> int:
    """Serve until ``stop`` is set (SIGTERM/SIGINT), then flush within the shutdown budget.

    ``remediation``: a callable that starts the remediation loop (see ``run``), or ``None``.
    """
    from healthcheck._agent.scheduler import Scheduler

    config = agent.config
    if remediation is not None:
        agent.remediation = remediation(agent)
    listeners = []
    if config.metrics is not None and agent.metrics is not None:
        try:
            listeners.append(agent.metrics.serve(config.metrics))
        except OSError as exc:
            raise _bind_error("metrics", config.metrics, exc) from None
    if config.server is not None:
        from healthcheck._agent.server import serve

        try:
            listeners.append(serve(config.server, agent.table, agent.remediation))
        except OSError as exc:
            raise _bind_error("server", config.server, exc) from None
    # Fail-safe start: give the API server a moment to tell us the node's current conditions
    # before results arrive; the reporter keeps trying (and PATCHes nothing) until it has.
    deadline = time.monotonic() + STARTUP_ADOPT_WAIT
    while not agent.reporter.sync() and time.monotonic() < deadline and not stop.is_set():
        stop.wait(min(1.0, max(0.0, agent.reporter.retry_at - agent.clock.monotonic())))
    scheduler = Scheduler(config.checks, agent.on_report, log=log)
    scheduler.start()
    agent.reporter.start()
    log(f"running {len(config.checks)} checks for node {agent.reporter.node}")
    while not stop.wait(1.0):
        pass
    shutdown_deadline = time.monotonic() + SHUTDOWN_BUDGET - 0.3
    # From the signal on, the reporter thread starts nothing new: the one final attempt below
    # is all that is sent after it.
    agent.reporter.stop(0)
    scheduler.stop()
    if agent.remediation is not None:
        agent.remediation.stop(1.0)  # its slot is kept: it expires, or a restart carries on
    # Results of runs already under way are part of "in-flight reports": let them land first.
    scheduler.wait_reported(max(0.0, shutdown_deadline - time.monotonic() - 1.0))
    # One last attempt at what is pending, only if the announced backoff allows it in time.
    flusher = threading.Thread(
        target=agent.reporter.final, args=(shutdown_deadline,), name="flush", daemon=True
    )
    flusher.start()
    flusher.join(max(0.0, shutdown_deadline - time.monotonic()))
    for listener in listeners:
        listener.server_close()
    log("stopped")
    return 0


def _hard_exit() -> None:
    """End the process :data:`SHUTDOWN_HARD_LIMIT` seconds after SIGTERM, whatever is stuck."""
    time.sleep(SHUTDOWN_HARD_LIMIT)
    # Logged from another thread: a stderr nobody reads must not keep the process alive.
    message = f"still running {SHUTDOWN_HARD_LIMIT:.0f}s after the signal; exiting now"
    threading.Thread(target=log, args=(message,), daemon=True).start()
    time.sleep(0.2)
    os._exit(1)


def run(
    config_path: str,
    *,
    once: bool = False,
    kubeconfig: str | None = None,
    node: str | None = None,
    dry_run: bool = False,
    check_config: bool = False,
    output: str | None = None,
) -> int:
    """``healthcheck agent``; returns the exit code.

    ``output`` (``json`` or ``table``) is the form of ``--dry-run``'s records; by default
    ``table`` on a terminal and ``json`` otherwise.
    """
    if output is not None and not dry_run:
        raise AgentUsageError("--output applies only with --dry-run")
    config = load(config_path)
    if check_config:
        from healthcheck.sdk.text import LOG_LIMIT, one_line

        print(f"{one_line(config_path, LOG_LIMIT)}: OK ({len(config.checks)} checks)")
        return 0
    name = node_name(node)
    if dry_run:
        from healthcheck._agent.dryrun import DryRunApi

        if output is None:
            output = "table" if sys.stdout.isatty() else "json"
        # From here on no repair runs in this process; the policy only says what it would do.
        api = DryRunApi(sys.stdout, output)
    else:
        from healthcheck._agent.kube import KubeApi, load_client_config

        try:
            api = KubeApi(load_client_config(kubeconfig))
        except ValueError as exc:
            raise AgentUsageError(str(exc)) from None
    agent = Agent(config, api, name, with_metrics=not once)
    if once:
        return run_once(agent)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=_hard_exit, name="shutdown-limit", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    remediation = None
    if config.remediation is not None:
        from healthcheck._agent.remediation import wiring

        def remediation(agent):
            try:
                return wiring.start(agent, kubeconfig, dry_run=dry_run, log=log)
            except ValueError as exc:
                raise AgentUsageError(str(exc)) from None

    return run_forever(agent, stop, remediation)
