"""Carrying out a rule's steps on the Node: taint, cordon, drain, repair, and the undo.

Each method records the new rule state together with the change it describes (through
:class:`~.store.NodeStore`) and says what it did in an Event and a log line. In a dry run the
same methods run, the Events say ``dry run: would ...``, and nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from healthcheck._agent.clock import Clock
from healthcheck._agent.conditions import Event
from healthcheck._agent.remediation import rules as r
from healthcheck._agent.remediation.api import RemediationApi
from healthcheck._agent.remediation.config import RemediationConfig, Rule
from healthcheck._agent.remediation.drain import Drainer
from healthcheck._agent.remediation.metrics import RemediationMetrics
from healthcheck._agent.remediation.store import NodeStore
from healthcheck.sdk.text import one_line

EVENT_BYTES = 1000
LIST_SHOWN = 10

_log = logging.getLogger(__name__)

# condition type -> its check's repair (returns the policy's one-line account) / description
Repairs = dict[str, Callable[[], str | None]]
Descriptions = dict[str, Callable[[], str]]


def _names(pods: Iterable[str]) -> str:
    pods = list(pods)
    shown = ", ".join(pods[:LIST_SHOWN])
    return shown + (f" (+{len(pods) - LIST_SHOWN} more)" if len(pods) > LIST_SHOWN else "")


class Actions:
    """The steps of every rule of one node. ``emit(Event)`` records an Event, ``is_dry(rule)``
    says whether the rule only pretends, ``on_phase(rule, phase, message)`` reports progress;
    ``repairs``/``describe_repair`` map a condition type to its check's repair and its
    description."""

    def __init__(
        self,
        config: RemediationConfig,
        store: NodeStore,
        api: RemediationApi,
        node: str,
        *,
        emit: Callable[[Event], object],
        is_dry: Callable[[Rule], bool],
        on_phase: Callable[[Rule, str, str], object],
        clock: Clock,
        repairs: Repairs | None = None,
        describe_repair: Descriptions | None = None,
        metrics: RemediationMetrics | None = None,
        drain_backoff: tuple[float, float] = (1.0, 30.0),
    ) -> None:
        self.config = config
        self.store = store
        self.emit_event = emit
        self.is_dry = is_dry
        self.on_phase = on_phase
        self.clock = clock
        self.repairs = repairs or {}
        self.describe_repair = describe_repair or {}
        self.metrics = metrics
        self.drainers = {
            rule.name: Drainer(
                api,
                node,
                config.drain,
                dry_run=is_dry(rule),
                backoff_base=drain_backoff[0],
                backoff_cap=drain_backoff[1],
                # a third of the lease: a pass always ends well before the slot could lapse
                pass_budget=config.lease_duration / 3,
                monotonic=clock.monotonic,
            )
            for rule in config.rules
            if "drain" in rule.actions
        }
        self._blocked_seen: dict[str, dict[str, str]] = {}
        self._starting: set[str] = set()  # rules started whose first write is not done yet

    def emit(self, kind: str, reason: str, message: str, rule: Rule | None = None) -> None:
        if rule is not None:
            self._announce_start(rule)  # a state was written: the start comes first
        dry = rule is not None and self.is_dry(rule)
        text = one_line(f"{'dry run: would ' if dry else ''}{message}", EVENT_BYTES)
        prefix = f"rule {rule.name}: " if rule is not None else ""
        _log.info("remediation: %s%s", prefix, text)
        self.emit_event(Event(kind, reason, text))

    def outcome(self, rule: Rule, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.outcome(
                rule.name, "dry_run" if self.is_dry(rule) and outcome == "started" else outcome
            )

    def start(self, rule: Rule, now: float) -> r.RuleState:
        """A new active state. Its Event (and the ``started`` count) wait until the first action
        is written: a write refused by a conflict and tried again is not a second start."""
        self._starting.add(rule.name)
        return r.RuleState(now)

    def _announce_start(self, rule: Rule) -> None:
        if rule.name not in self._starting:
            return
        self._starting.discard(rule.name)
        self.emit(
            "Warning",
            "RemediationStarted",
            f"start remediation {rule.name} for {rule.condition}={rule.status}: "
            f"{', '.join(rule.actions)}",
            rule,
        )
        self.outcome(rule, "started")

    def act(self, rule: Rule, state: r.RuleState, action: str, now: float) -> bool:
        """Carry out ``action``; ``True`` when it is complete (the next may follow at once)."""
        done = r.RuleState(
            state.started,
            [*state.done, action],
            state.repaired_at,
            state.hold_until,
            state.drain_started,
        )
        view = self.store.current()
        if action == "taint":
            if view.has_taint(rule.taint_key):
                self.store.save(rule, done)
            else:
                self.store.save(rule, done, add_taints=[rule.taint_key])
                self.emit(
                    "Normal", "NodeTainted", f"taint the node {rule.taint_key}:NoSchedule", rule
                )
        elif action == "cordon":
            if not view.unschedulable:
                self.store.save(rule, done, unschedulable=True)
                self.emit("Normal", "NodeCordoned", "cordon the node", rule)
            else:
                self.store.save(rule, done)
                if not view.record.cordoned:  # an operator's cordon: theirs, never undone by us
                    self.emit(
                        "Normal",
                        "AlreadyCordoned",
                        "leave the node cordoned as someone else did (it will not be uncordoned)",
                        rule,
                    )
        elif action == "drain":
            if not self.drain(rule, state, now):
                return False
        elif action == "repair":
            self.repair(rule, done, now)
        self._announce_start(rule)  # when the action needed no Event of its own
        saved = self.store.state(rule)
        if saved is not None and all(a in saved.done for a in rule.actions):
            self.outcome(rule, "done")
        return True

    def drain(self, rule: Rule, state: r.RuleState, now: float) -> bool:
        """One drain pass; ``True`` once the drain is over (done, incomplete or timed out)."""
        if state.drain_started is None:
            state = r.RuleState(state.started, state.done, state.repaired_at, state.hold_until, now)
            self.store.save(rule, state)
            self.emit("Normal", "DrainStarted", "drain the node (evict its pods)", rule)
        result = self.drainers[rule.name].step(self.clock.monotonic())
        if self.metrics is not None:
            if result.evicted and not self.is_dry(rule):
                self.metrics.evictions.labels("evicted").inc(len(result.evicted))
            if result.blocked:
                self.metrics.evictions.labels("blocked").inc(len(result.blocked))
        if result.evicted:
            self.emit(
                "Normal",
                "PodsEvicted",
                f"evict {len(result.evicted)} pod(s): {_names(result.evicted)}",
                rule,
            )
        if result.blocked and result.blocked != self._blocked_seen.get(rule.name):
            self._blocked_seen[rule.name] = dict(result.blocked)
            by = ", ".join(
                f"{pod} by PDB {pdb}" for pod, pdb in list(result.blocked.items())[:LIST_SHOWN]
            )
            self.emit("Warning", "DrainBlocked", f"eviction refused: {by}; retrying", rule)
        for pod, error in list(result.errors.items())[:LIST_SHOWN]:
            _log.warning("remediation: rule %s: evict %s: %s", rule.name, pod, error)
        started = state.drain_started if state.drain_started is not None else now
        timed_out = now - started > self.config.drain.timeout
        if not result.finished and not timed_out and not self.is_dry(rule):
            remaining = len(result.pending) + len(result.terminating)
            self.on_phase(rule, "draining", f"{remaining} pod(s) left")
            return False
        self._blocked_seen.pop(rule.name, None)
        done = r.RuleState(
            state.started,
            [*state.done, "drain"],
            state.repaired_at,
            state.hold_until,
            state.drain_started,
        )
        self.store.save(rule, done)
        left = {
            **dict.fromkeys(result.terminating, "still terminating"),
            **dict.fromkeys(result.pending, "not evicted in time"),
            **result.refused,
        }
        if left or not result.complete:
            # a dry run does not wait for terminating pods: it ends at once, nothing timed out
            gave_up = not result.finished and not self.is_dry(rule)
            what = "drain timed out" if gave_up else "drain incomplete"
            shown = ", ".join(f"{pod} ({why})" for pod, why in list(left.items())[:LIST_SHOWN])
            more = f" (+{len(left) - LIST_SHOWN} more)" if len(left) > LIST_SHOWN else ""
            if not result.complete:
                more += " (and pods beyond the first listed, too many to list)"
            self.emit(
                "Warning",
                "DrainTimedOut" if gave_up else "DrainIncomplete",
                f"{what}; the node stays cordoned; pods left: {shown}{more}",
                rule,
            )
            self.outcome(rule, "drain_timeout" if gave_up else "drain_incomplete")
        else:
            self.emit("Normal", "DrainDone", "drain done: no evictable pod left", rule)
        return True

    def repair(self, rule: Rule, done: r.RuleState, now: float) -> None:
        done.repaired_at = now
        if self.is_dry(rule):
            what = self.describe_repair.get(rule.condition, lambda: "repair")()
            self.store.save(rule, done)
            self.emit("Warning", "RepairRun", f"run the repair: {what}", rule)
            return
        self.store.save(rule, done)  # recorded first: a crash mid-repair must not repeat it at once
        account = self.repairs[rule.condition]()
        self.emit(
            "Warning", "RepairRun", f"repair: {account or 'nothing done (repair disabled)'}", rule
        )

    def repair_failed(self, rule: Rule, state: r.RuleState, now: float) -> None:
        held = r.after_repair_failed(rule, state, now)
        self.store.save(rule, held)
        self.emit(
            "Warning",
            "RepairDidNotHelp",
            f"{rule.condition} still {rule.status} after the repair; next try not before "
            f"{int(rule.repair_hold)}s from now",
            rule,
        )
        self.outcome(rule, "repair_failed")

    def undo(self, rule: Rule, state: r.RuleState) -> None:
        record = self.store.record(rule)
        others_cordon = any(
            name != rule.name and "cordon" in other.done for name, other in record.rules.items()
        )
        changes: dict[str, Any] = {}
        undone = []
        if "taint" in state.done:
            changes["remove_taints"] = [rule.taint_key]
            undone.append(f"remove taint {rule.taint_key}")
        if "cordon" in state.done and not others_cordon and record.cordoned:
            changes["unschedulable"] = False
            undone.append("uncordon")
        self.store.save(rule, None, **changes)
        what = ", ".join(undone) or "nothing left to undo"
        self.emit("Normal", "RemediationUndone", f"{rule.condition} cleared: {what}", rule)
        self.outcome(rule, "undone")
