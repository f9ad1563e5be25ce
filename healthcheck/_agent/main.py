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

import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from healthcheck import _host as host
from healthcheck._agent.clock import Clock
from healthcheck._agent.conditions import ConditionTable, temporary_events
from healthcheck._agent.config import AgentConfig, ConfigError, load_config
from healthcheck._agent.dryrun import DryRunApi
from healthcheck._agent.events import EventCorrelator
from healthcheck._agent.kube import KubeApi, load_client_config
from healthcheck._agent.ratelimit import limited
from healthcheck._agent.reporter import Reporter
from healthcheck._agent.scheduler import Report, Scheduler, run_all_once
from healthcheck._agent.server import serve
from healthcheck._agent.spread import Spread
from healthcheck._agent.traffic import TrafficSettings
from healthcheck._deadline import Deadline
from healthcheck._protocol import Status, worst
from healthcheck.sdk.text import LOG_LIMIT, one_line

if TYPE_CHECKING:  # imported when used: they load prometheus_client / the remediation loop
    from healthcheck._agent.metrics import Metrics
    from healthcheck._agent.remediation.controller import Controller

_log = logging.getLogger(__name__)

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
LOG_PREFIX = "healthcheck agent: "


class LineFormatter(logging.Formatter):
    """``healthcheck agent: MESSAGE`` as one line of at most :data:`LOG_LINE_LIMIT` bytes,
    whatever the message holds (a plugin's result, a server's error): no level, no time (the
    journal adds its own), no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(LOG_PREFIX + record.getMessage(), LOG_LINE_LIMIT)


class StderrHandler(logging.StreamHandler[TextIO]):
    """stderr as it is when the agent starts; a line it cannot write is dropped instead of
    printing a traceback about it."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def handleError(self, record: logging.LogRecord) -> None:
        pass


def configure_logging() -> logging.Logger:
    """Send every ``healthcheck._agent.*`` logger's records (INFO and up) to stderr as
    :class:`LineFormatter` lines; idempotent. Other loggers are left as they were."""
    agent_logger = logging.getLogger("healthcheck._agent")
    for old in list(agent_logger.handlers):
        if isinstance(old, StderrHandler):
            agent_logger.removeHandler(old)
    handler = StderrHandler()
    handler.setFormatter(LineFormatter())
    agent_logger.addHandler(handler)
    agent_logger.setLevel(logging.INFO)
    return agent_logger


NODE_NAME_MAX = 253


def node_name(flag: str | None) -> str:
    """The flag, then ``NODE_NAME``, then the hostname (NPD's order).

    The name goes into API paths, Event names and every log line, so it must be what Kubernetes
    allows for a node (a DNS-1123 subdomain): anything else is :class:`AgentUsageError`.
    """
    if flag:
        name, source = flag, "--node-name"
    elif os.environ.get("NODE_NAME"):
        name, source = os.environ["NODE_NAME"], "NODE_NAME"
    else:
        name, source = socket.gethostname(), "the hostname"
    label = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    if len(name) > NODE_NAME_MAX or not re.fullmatch(rf"{label}(\.{label})*", name):
        shown = one_line(name, LOG_LIMIT, marker="…")
        raise AgentUsageError(
            f'node name "{shown}" (from {source}) is not a Kubernetes node name: lower-case '
            f"letters, digits, '-' and '.', at most {NODE_NAME_MAX}; pass --node-name NAME"
        )
    return name


def load(config_path: str) -> AgentConfig:
    """Discover checkers and validate the config; :class:`AgentUsageError` on any problem."""
    catalog = host.discover()
    checkers = {name: loaded.checker for name, loaded in catalog.checkers.items()}
    try:
        return load_config(config_path, checkers)
    except ConfigError as exc:
        raise AgentUsageError(str(exc)) from None


class Agent:
    """One agent: everything the long-running and the ``--once`` paths share."""

    def __init__(
        self,
        config: AgentConfig,
        api: KubeApi | DryRunApi,
        node: str,
        *,
        clock: Clock | None = None,
        with_metrics: bool = True,
    ) -> None:
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
            log=logging.getLogger("healthcheck._agent.reporter").info,
            spread=spread,
        )
        self._lock = threading.Lock()  # results arrive from many check threads at once
        self.remediation: Controller | None = None  # started by run_forever
        self.metrics: Metrics | None = None
        if with_metrics:
            # Here, not at the top: prometheus_client is loaded only by the long-running agent,
            # never by --once.
            from healthcheck._agent.metrics import Metrics

            self.metrics = Metrics(config.checks)
            self.metrics.stats.reporter = self.reporter

    def on_report(self, report: Report) -> None:
        """One check's result: state machine, events, metrics, and a nudge to the reporter."""
        with self._lock:
            self._handle(report)

    def _handle(self, report: Report) -> None:
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
            _log.warning("%s: %s: %s", spec.name, result.status.name, result.message)


def traffic_controls(
    api: KubeApi | DryRunApi, node: str, settings: TrafficSettings, clock: Clock
) -> tuple[Any, Spread]:
    """``(api behind the client-side rate limit, the node's Spread)`` from the traffic settings."""
    spread = Spread(
        node, settings.startup_spread, settings.change_spread, hold_read=settings.read_spread
    )
    return limited(api, settings.qps, settings.burst, clock), spread


def _bind_error(what: str, address: tuple[str, int], exc: OSError) -> AgentUsageError:
    return AgentUsageError(
        f"{what} address {address[0]}:{address[1]}: cannot listen: {exc.strerror or exc}"
    )


def run_once(agent: Agent) -> int:
    """``--once``: adopt, run every check once, report; the exit code as the module says."""
    agent.reporter.sync()  # reads the node first, so transitions start from its real status
    reports = run_all_once(agent.config.checks, agent.on_report)
    statuses = [r.result.status for r in reports]
    if len(reports) < len(agent.config.checks):
        statuses.append(Status.UNKNOWN)
    status = worst(statuses)
    reporter = agent.reporter
    if not reporter.flush(time.monotonic() + ONCE_FLUSH_BUDGET):
        _log.error(
            "could not report %s (checks found %s): %s",
            reporter.pending(),
            status.name,
            reporter.last_error,
        )
        return EXIT_NOT_REPORTED
    if reporter.events_refused:
        _log.error(
            "not reported: the API server refused %s event(s) (checks found %s)",
            reporter.events_refused,
            status.name,
        )
        return EXIT_NOT_REPORTED
    return int(status)


def run_forever(
    agent: Agent,
    stop: threading.Event,
    remediation: Callable[[Agent], Controller | None] | None = None,
) -> int:
    """Serve until ``stop`` is set (SIGTERM/SIGINT), then flush within the shutdown budget.

    ``remediation``: a callable that starts the remediation loop (see ``run``), or ``None``.
    """
    config = agent.config
    if remediation is not None:
        agent.remediation = remediation(agent)
    listeners: list[Any] = []
    if config.metrics is not None and agent.metrics is not None:
        try:
            listeners.append(agent.metrics.serve(config.metrics))
        except OSError as exc:
            raise _bind_error("metrics", config.metrics, exc) from None
    if config.server is not None:
        try:
            listeners.append(serve(config.server, agent.table, agent.remediation))
        except OSError as exc:
            raise _bind_error("server", config.server, exc) from None
    # Fail-safe start: give the API server a moment to tell us the node's current conditions
    # before results arrive; the reporter keeps trying (and PATCHes nothing) until it has.
    adopt = Deadline(STARTUP_ADOPT_WAIT)
    while not agent.reporter.sync() and not adopt.expired() and not stop.is_set():
        stop.wait(min(1.0, max(0.0, agent.reporter.retry_at - agent.clock.monotonic())))
    scheduler = Scheduler(config.checks, agent.on_report)
    scheduler.start()
    agent.reporter.start()
    _log.info("running %d checks for node %s", len(config.checks), agent.reporter.node)
    while not stop.wait(1.0):
        pass
    shutdown = Deadline(SHUTDOWN_BUDGET - 0.3)
    # From the signal on, the reporter thread starts nothing new: the one final attempt below
    # is all that is sent after it.
    agent.reporter.stop(0)
    scheduler.stop()
    if agent.remediation is not None:
        agent.remediation.stop(1.0)  # its slot is kept: it expires, or a restart carries on
    # Results of runs already under way are part of "in-flight reports": let them land first.
    scheduler.wait_reported(max(0.0, shutdown.remaining() - 1.0))
    # One last attempt at what is pending, only if the announced backoff allows it in time.
    flusher = threading.Thread(
        target=agent.reporter.final, args=(shutdown.at,), name="flush", daemon=True
    )
    flusher.start()
    flusher.join(shutdown.remaining())
    for listener in listeners:
        listener.server_close()
    _log.info("stopped")
    return 0


def _hard_exit() -> None:
    """End the process :data:`SHUTDOWN_HARD_LIMIT` seconds after SIGTERM, whatever is stuck."""
    time.sleep(SHUTDOWN_HARD_LIMIT)
    # Logged from another thread: a stderr nobody reads must not keep the process alive.
    message = f"still running {SHUTDOWN_HARD_LIMIT:.0f}s after the signal; exiting now"
    threading.Thread(target=_log.error, args=(message,), daemon=True).start()
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
    configure_logging()
    config = load(config_path)
    if check_config:
        print(f"{one_line(config_path, LOG_LIMIT)}: OK ({len(config.checks)} checks)")
        return 0
    name = node_name(node)
    api: KubeApi | DryRunApi
    if dry_run:
        if output is None:
            output = "table" if sys.stdout.isatty() else "json"
        # From here on no repair runs in this process; the policy only says what it would do.
        api = DryRunApi(sys.stdout, output)
    else:
        try:
            api = KubeApi(load_client_config(kubeconfig))
        except ValueError as exc:
            raise AgentUsageError(str(exc)) from None
    agent = Agent(config, api, name, with_metrics=not once)
    if once:
        return run_once(agent)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=_hard_exit, name="shutdown-limit", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if config.remediation is None:
        return run_forever(agent, stop)
    # Here, not at the top: the remediation loop is loaded only when the config turns it on.
    from healthcheck._agent.remediation import wiring

    def remediation(agent: Agent) -> Controller | None:
        try:
            return wiring.start(agent, kubeconfig, dry_run=dry_run)
        except ValueError as exc:
            raise AgentUsageError(str(exc)) from None

    return run_forever(agent, stop, remediation)
