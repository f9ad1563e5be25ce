"""Remediation's Prometheus metrics, in the agent's registry.

- ``healthcheck_remediation_total{rule,outcome}``: steps that ended a phase: ``started``,
  ``done`` (every action carried out), ``drain_timeout``, ``drain_incomplete`` (pods refused),
  ``repair_failed``, ``undone``, ``dry_run``;
- ``healthcheck_remediation_evictions_total{result}``: ``evicted`` or ``blocked`` (PDB);
- ``healthcheck_remediation_slot_held``: 1 while this node holds a budget slot;
- ``healthcheck_remediation_waiting``: 1 while it waits for one;
- ``healthcheck_remediation_slot_wait_seconds_total``: time spent waiting for slots;
- ``healthcheck_remediation_active{rule}``: 1 while the rule is active on this node.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge

from healthcheck._agent.remediation.config import Rule


class RemediationMetrics:
    """The collectors; every method is cheap and thread-safe (prometheus-client's own locks)."""

    def __init__(self, registry: CollectorRegistry, rules: Iterable[Rule]) -> None:
        self.outcomes = Counter(
            "healthcheck_remediation",
            "Remediation steps by rule and outcome.",
            ["rule", "outcome"],
            registry=registry,
        )
        self.evictions = Counter(
            "healthcheck_remediation_evictions",
            "Eviction requests by result (evicted, blocked by a PodDisruptionBudget).",
            ["result"],
            registry=registry,
        )
        self.slot_held = Gauge(
            "healthcheck_remediation_slot_held",
            "1 while this node holds a remediation slot of the fleet budget.",
            registry=registry,
        )
        self.waiting = Gauge(
            "healthcheck_remediation_waiting",
            "1 while this node waits for a remediation slot.",
            registry=registry,
        )
        self.wait_seconds = Counter(
            "healthcheck_remediation_slot_wait_seconds",
            "Seconds spent waiting for a remediation slot.",
            registry=registry,
        )
        self.active = Gauge(
            "healthcheck_remediation_active",
            "1 while the rule is active on this node.",
            ["rule"],
            registry=registry,
        )
        for rule in rules:
            self.active.labels(rule.name).set(0)

    def outcome(self, rule: str, outcome: str) -> None:
        self.outcomes.labels(rule, outcome).inc()
