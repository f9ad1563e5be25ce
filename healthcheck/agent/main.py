"""Wiring: config -> scheduler -> condition table -> reporter, metrics and the local server.

``run`` is what ``healthcheck agent`` calls. User errors raise :class:`AgentUsageError` (one
line, exit 2) before anything runs.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

from healthcheck.protocol import Status, worst

EVENT_COMPONENT = "healthcheck-agent"
SHUTDOWN_BUDGET = 5.0
STARTUP_ADOPT_WAIT = 5.0
ONCE_FLUSH_BUDGET = 10.0


class AgentUsageError(Exception):
    """Bad flags or configuration: one line, exit 2."""


def log(message: str) -> None:
    print(f"healthcheck agent: {message}", file=sys.stderr, flush=True)


def node_name(flag: str | None) -> str:
    """The flag, then ``NODE_NAME``, then the hostname (NPD's order)."""
    return flag or os.environ.get("NODE_NAME") or socket.gethostname()


def load(config_path: str):
    """Discover checkers and validate the config; :class:`AgentUsageError` on any problem."""
    from healthcheck import host
    from healthcheck.agent.config import ConfigError, load_config

    catalog = host.discover()
    checkers = {name: loaded.checker for name, loaded in catalog.checkers.items()}
    try:
        return load_config(config_path, checkers)
    except ConfigError as exc:
        raise AgentUsageError(str(exc)) from None


class Agent:
    """One agent: everything the long-running and the ``--once`` paths share."""

    def __init__(self, config, api, node: str, *, clock=None, with_metrics: bool = True) -> None:
        from healthcheck.agent.clock import Clock
        from healthcheck.agent.conditions import ConditionTable
        from healthcheck.agent.events import EventCorrelator
        from healthcheck.agent.reporter import Reporter

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
        self.metrics = None
        if with_metrics:
            from healthcheck.agent.metrics import Metrics

            self.metrics = Metrics(config.checks)
            self.metrics.stats.reporter = self.reporter

    def on_report(self, report) -> None:
        """One check's result: state machine, events, metrics, and a nudge to the reporter."""
        with self._lock:
            self._handle(report)

    def _handle(self, report) -> None:
        from healthcheck.agent.conditions import temporary_events

        spec, result = report.spec, report.result
        before = self.table.version
        if spec.permanent:
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
        if report.timed_out or result.status != Status.OK:
            log(f"{spec.name}: {result.status.name}: {result.message}")


def traffic_controls(api, node: str, settings, clock):
    """``(api behind the client-side rate limit, the node's Spread)`` from the traffic settings."""
    from healthcheck.agent.ratelimit import limited
    from healthcheck.agent.spread import Spread

    spread = Spread(node, settings.startup_spread, settings.change_spread)
    return limited(api, settings.qps, settings.burst, clock), spread


def _bind_error(what: str, address, exc: OSError) -> AgentUsageError:
    return AgentUsageError(
        f"{what} address {address[0]}:{address[1]}: cannot listen: {exc.strerror or exc}"
    )


def run_once(agent: Agent) -> int:
    """``--once``: adopt, run every check once, report, exit with the worst status."""
    from healthcheck.agent.scheduler import run_all_once

    agent.reporter.sync()  # reads the node first, so transitions start from its real status
    reports = run_all_once(agent.config.checks, agent.on_report, log)
    statuses = [r.result.status for r in reports]
    if len(reports) < len(agent.config.checks):
        statuses.append(Status.UNKNOWN)
    if not agent.reporter.flush(time.monotonic() + ONCE_FLUSH_BUDGET):
        log(f"could not report: {agent.reporter.last_error}")
        statuses.append(Status.UNKNOWN)
    return int(worst(statuses))


def run_forever(agent: Agent, stop: threading.Event) -> int:
    """Serve until ``stop`` is set (SIGTERM/SIGINT), then flush within the shutdown budget."""
    from healthcheck.agent.scheduler import Scheduler

    config = agent.config
    listeners = []
    if config.metrics is not None and agent.metrics is not None:
        try:
            listeners.append(agent.metrics.serve(config.metrics))
        except OSError as exc:
            raise _bind_error("metrics", config.metrics, exc) from None
    if config.server is not None:
        from healthcheck.agent.server import serve

        try:
            listeners.append(serve(config.server, agent.table))
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
    scheduler.stop()
    # Results of runs already under way are part of "in-flight reports": let them land first.
    scheduler.wait_reported(max(0.0, shutdown_deadline - time.monotonic() - 1.0))
    agent.reporter.stop(0)
    flusher = threading.Thread(
        target=agent.reporter.flush, args=(shutdown_deadline,), name="flush", daemon=True
    )
    flusher.start()
    flusher.join(max(0.0, shutdown_deadline - time.monotonic()))
    for listener in listeners:
        listener.server_close()
    log("stopped")
    return 0


def run(
    config_path: str,
    *,
    once: bool = False,
    kubeconfig: str | None = None,
    node: str | None = None,
    dry_run: bool = False,
    check_config: bool = False,
) -> int:
    """``healthcheck agent``; returns the exit code."""
    config = load(config_path)
    if check_config:
        print(f"{config_path}: OK ({len(config.checks)} checks)")
        return 0
    name = node_name(node)
    if dry_run:
        from healthcheck.agent.kube import DryRunApi

        api = DryRunApi(sys.stdout)
    else:
        from healthcheck.agent.kube import KubeApi, load_client_config

        try:
            api = KubeApi(load_client_config(kubeconfig))
        except ValueError as exc:
            raise AgentUsageError(str(exc)) from None
    agent = Agent(config, api, name, with_metrics=not once)
    if once:
        return run_once(agent)
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run_forever(agent, stop)
