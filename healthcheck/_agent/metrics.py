"""Prometheus metrics with NPD's names, labels and meaning (spec 2.8, 7.4), plus our own.

- ``problem_counter{reason}``: active problems seen (temporary-check events and permanent
  transitions to True; not recoveries, not Unknown). NPD's OpenCensus exporter exposes the
  sample as ``problem_counter`` with no ``_total`` suffix; prometheus-client would rename a
  Counter to ``problem_counter_total``, so this one is exposed by a small collector under
  NPD's exact sample name (TYPE untyped) and existing queries keep working.
- ``problem_gauge{type,reason}``: 1 while condition ``type`` is True with ``reason``; setting a
  type's gauge first zeroes the reason previously recorded for it.
- ``healthcheck_check_duration_seconds{check}`` (histogram) and
  ``healthcheck_check_status{check}`` (0 OK, 1 problem, 2 unknown).
- ``healthcheck_agent_*``: API writes, dropped events, failures, for watching the agent itself.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from healthcheck._agent.conditions import Event, NodeCondition
from healthcheck._agent.config import CheckSpec
from healthcheck._agent.scheduler import Report
from healthcheck._agent.server import IDLE_TIMEOUT, BoundedServer, family_of


class _ProblemCounter:
    """``problem_counter{reason}`` under NPD's exact sample name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: dict[str, float] = {}

    def inc(self, reason: str, amount: float = 1.0) -> None:
        with self._lock:
            self.values[reason] = self.values.get(reason, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        metric = Metric(
            "problem_counter",
            "Number of times a specific type of problem have occurred.",
            "unknown",
        )
        with self._lock:
            for reason, value in sorted(self.values.items()):
                metric.add_sample("problem_counter", {"reason": reason}, value)
        yield metric


class _ReporterStats:
    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter  # a healthcheck._agent.reporter.Reporter, set once it exists

    def collect(self) -> Iterator[Metric]:
        r = self.reporter
        if r is None:
            return
        yield CounterMetricFamily(
            "healthcheck_agent_node_status_patches",
            "PATCHes of the node status sent.",
            value=r.patches_sent,
        )
        yield CounterMetricFamily(
            "healthcheck_agent_events_sent", "Events created or updated.", value=r.events_sent
        )
        yield CounterMetricFamily(
            "healthcheck_agent_events_dropped",
            "Events dropped because the queue was full while the API server was unreachable.",
            value=r.events_dropped,
        )
        yield GaugeMetricFamily(
            "healthcheck_agent_api_failures",
            "Consecutive failed API syncs (0 when the last one succeeded).",
            value=r.failures,
        )


class Metrics:
    """All metrics of one agent, in a registry of their own."""

    def __init__(self, specs: Iterable[CheckSpec]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.counter = _ProblemCounter()
        self.registry.register(self.counter)
        self.stats = _ReporterStats(None)
        self.registry.register(self.stats)
        self.gauge = Gauge(
            "problem_gauge",
            "Whether a specific type of problem is affecting the node or not.",
            ["type", "reason"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "healthcheck_check_duration_seconds",
            "How long each check took.",
            ["check"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.status = Gauge(
            "healthcheck_check_status",
            "Latest status of each check: 0 OK, 1 problem, 2 unknown.",
            ["check"],
            registry=self.registry,
        )
        self._gauge_reason: dict[str, str] = {}
        # NPD initialises every rule's counter at 0 and every permanent rule's gauge at 0.
        for spec in specs:
            self.counter.inc(spec.reason, 0)
            if spec.permanent:
                self.gauge.labels(spec.condition, spec.reason).set(0)

    def observe(self, report: Report) -> None:
        """A check's duration and status."""
        self.duration.labels(report.spec.name).observe(report.duration)
        self.status.labels(report.spec.name).set(int(report.result.status))

    def problems(self, events: Iterable[Event]) -> None:
        """``problem_counter`` for each active problem among ``events`` (Warning events)."""
        for event in events:
            if event.type == "Warning":
                self.counter.inc(event.reason)

    def conditions(self, conditions: Iterable[NodeCondition]) -> None:
        """Set ``problem_gauge`` for every condition, at most one reason per type at 1."""
        for cond in conditions:
            previous = self._gauge_reason.get(cond.type)
            if previous is not None and previous != cond.reason:
                self.gauge.labels(cond.type, previous).set(0)
            self._gauge_reason[cond.type] = cond.reason
            self.gauge.labels(cond.type, cond.reason).set(1 if cond.status == "True" else 0)

    def serve(self, address: tuple[str, int]) -> WSGIServer:
        """Start the ``/metrics`` listener; returns the server so callers can learn its port.

        prometheus-client's own ``start_http_server`` gives every connection a thread for as
        long as the client keeps it open; this one is a
        :class:`~healthcheck._agent.server.BoundedServer` (connections capped, idle ones
        dropped) serving the same WSGI app.
        """

        class Server(BoundedServer, WSGIServer):
            pass

        Server.address_family = family_of(address[0])

        class Handler(WSGIRequestHandler):
            timeout = IDLE_TIMEOUT

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = make_server(
            address[0], address[1], make_wsgi_app(self.registry), Server, handler_class=Handler
        )
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        return server
