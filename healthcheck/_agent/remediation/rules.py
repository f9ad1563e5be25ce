"""The per-rule state machine: what a rule wants done now, from what is observed. Pure.

A rule is *idle* (no state) or *active* (a :class:`RuleState`, kept on the Node in an
annotation, or in memory for a dry run). :func:`evaluate` looks at the condition, the
not-before time, the node's age, the rule's state and the time, and answers one
:class:`Step`; the controller carries it out. Time is always an argument, so tests drive it.

- idle, condition matching for ``for`` and past ``not_before - leadTime``, node older than
  the grace period -> ``start`` (needs a slot), else ``pending`` until that time;
- active with actions left -> ``act`` (the next action, in the fixed order taint, cordon,
  drain, repair); a repair left while in the hold after a failed one -> ``wait``;
- active, all done, a repair not yet judged -> ``wait`` until ``repairVerify`` after it, then
  ``repair_failed`` if the condition still holds (the controller sets the hold);
- active and the condition *cleared* (the opposite definite status, or gone from the node;
  never ``Unknown``, which keeps the state) -> ``undo``, but not before ``minHold`` after the
  start (``wait`` until then).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from healthcheck._agent.remediation.config import ACTIONS, Rule

IDLE, PENDING, START, ACT, WAIT, UNDO, REPAIR_FAILED = (
    "idle",
    "pending",
    "start",
    "act",
    "wait",
    "undo",
    "repair_failed",
)
ABSENT = ""  # the condition type is not on the node at all
MAX_RECORD_BYTES = 16 * 1024
MAX_EPOCH = 1e11


@dataclass(frozen=True, slots=True)
class Observation:
    """What is known about one rule's condition at one moment.

    ``status`` is ``"True"``/``"False"``/``"Unknown"``, :data:`ABSENT`, or ``None`` while our own
    check has not reported yet (no decision is taken on ``None``). ``since`` is the condition's
    last transition (epoch seconds); ``not_before`` the scheduled time of a disruption, when the
    check that reports the condition gave one as data; ``node_age`` seconds since the Node was
    created, ``None`` when unknown.
    """

    status: str | None
    since: float = 0.0
    not_before: float | None = None
    node_age: float | None = None


class RuleState:
    """An active rule: when it started, which actions are done, repair and hold times."""

    __slots__ = ("done", "drain_started", "hold_until", "repaired_at", "started")

    def __init__(
        self,
        started: float,
        done: Iterable[str] = (),
        repaired_at: float | None = None,
        hold_until: float | None = None,
        drain_started: float | None = None,
    ) -> None:
        self.started = started
        self.done: list[str] = list(done)
        self.repaired_at = repaired_at
        self.hold_until = hold_until
        self.drain_started = drain_started

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"started": self.started, "done": list(self.done)}
        for key, value in (
            ("repairedAt", self.repaired_at),
            ("holdUntil", self.hold_until),
            ("drainStarted", self.drain_started),
        ):
            if value is not None:
                data[key] = value
        return data

    @classmethod
    def from_json(cls, data: object) -> RuleState | None:
        """A state from the annotation; ``None`` when it is not one of ours (hand-edited junk)."""
        if not isinstance(data, dict):
            return None

        def number(key: str) -> float | None:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            # epoch seconds between 1970 and 5138: NaN, infinities and junk read as absent
            return float(value) if 0 <= value < MAX_EPOCH else None

        started = number("started")
        done = data.get("done")
        if started is None or not isinstance(done, list):
            return None
        return cls(
            started,
            [a for a in done if a in ACTIONS],
            number("repairedAt"),
            number("holdUntil"),
            number("drainStarted"),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleState) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"RuleState({self.to_json()})"


@dataclass(frozen=True, slots=True)
class Step:
    """The answer of :func:`evaluate`: ``kind`` (one of the module constants), the ``action``
    for ``act``, and ``wake`` (epoch seconds) for ``pending``/``wait``: when to look again."""

    kind: str
    action: str = ""
    wake: float | None = None

    def __repr__(self) -> str:
        extra = f" {self.action}" if self.action else ""
        extra += f" @{self.wake}" if self.wake is not None else ""
        return f"Step({self.kind}{extra})"


def cleared(rule: Rule, status: str | None) -> bool:
    """The condition definitely no longer has the rule's status (``Unknown`` never clears)."""
    return status is not None and status not in (rule.status, "Unknown")


def due_time(rule: Rule, obs: Observation, now: float, node_grace: float) -> float:
    """When a matching condition should be acted on: ``for`` after its transition, no earlier
    than ``not_before - leadTime`` (at once when that is past or the time is unknown), and
    not while the node is younger than ``node_grace``."""
    due = obs.since + rule.for_
    if obs.not_before is not None:
        due = max(due, obs.not_before - rule.lead_time)
    if obs.node_age is not None and obs.node_age < node_grace:
        due = max(due, now + node_grace - obs.node_age)
    return due


def evaluate(
    rule: Rule, obs: Observation, state: RuleState | None, now: float, node_grace: float = 0.0
) -> Step:
    """The :class:`Step` ``rule`` wants now."""
    if state is None:
        if obs.status is None or obs.status != rule.status:
            return Step(IDLE)
        due = due_time(rule, obs, now, node_grace)
        if now < due:
            return Step(PENDING, wake=due)
        return Step(START)
    if cleared(rule, obs.status):
        hold_end = state.started + rule.min_hold
        if now < hold_end:
            return Step(WAIT, wake=hold_end)
        return Step(UNDO)
    remaining = [a for a in rule.actions if a not in state.done]
    if remaining:
        if remaining[0] == "repair" and state.hold_until is not None and now < state.hold_until:
            return Step(WAIT, wake=state.hold_until)
        return Step(ACT, remaining[0])
    if "repair" in rule.actions and state.repaired_at is not None:
        verdict = state.repaired_at + rule.repair_verify
        if now < verdict:
            return Step(WAIT, wake=verdict)
        if obs.status == rule.status:
            return Step(REPAIR_FAILED)
    return Step(WAIT)


def after_repair_failed(rule: Rule, state: RuleState, now: float) -> RuleState:
    """The state after a repair that did not clear the condition: hold, then try again."""
    done = [a for a in state.done if a != "repair"]
    return RuleState(state.started, done, None, now + rule.repair_hold, state.drain_started)


def holds_marks(state: RuleState | None) -> bool:
    """Whether the rule keeps something on the node (taint or cordon) or an action under way."""
    if state is None:
        return False
    return bool({"taint", "cordon"} & set(state.done)) or (
        state.drain_started is not None and "drain" not in state.done
    )


# ------------------------------------------------------------------ the record on the Node


class Record:
    """Everything remediation keeps on the Node (one JSON annotation): per-rule states and
    whether *we* cordoned it (never undo an operator's cordon)."""

    __slots__ = ("cordoned", "rules")

    def __init__(self, rules: dict[str, RuleState] | None = None, cordoned: bool = False):
        self.rules: dict[str, RuleState] = dict(rules or {})
        self.cordoned = cordoned

    def dumps(self) -> str | None:
        """The annotation value; ``None`` (remove it) when nothing is active."""
        if not self.rules and not self.cordoned:
            return None
        data: dict[str, Any] = {"rules": {k: v.to_json() for k, v in sorted(self.rules.items())}}
        if self.cordoned:
            data["cordoned"] = True
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def loads(cls, text: object) -> Record:
        """Parse the annotation; junk or an oversized value reads as an empty record."""
        if not isinstance(text, str) or len(text) > MAX_RECORD_BYTES:
            return cls()
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the stack
            return cls()
        if not isinstance(data, dict):
            return cls()
        rules: dict[str, RuleState] = {}
        raw_rules = data.get("rules")
        if isinstance(raw_rules, dict):
            for name, raw in raw_rules.items():
                state = RuleState.from_json(raw)
                if isinstance(name, str) and state is not None:
                    rules[name] = state
        return cls(rules, data.get("cordoned") is True)

    def copy(self) -> Record:
        return Record.loads(self.dumps())
