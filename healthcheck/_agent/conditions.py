"""NPD's custom-plugin-monitor state machine (spec 2.6), exactly, plus the fail-safe start.

:class:`ConditionTable` holds one :class:`NodeCondition` per condition type the configuration
owns. A type is *unknown to us* (``None``) until the node's existing condition is adopted or a
check reports, so a restart never reports a broken node as healthy (NPD #304/#645).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from healthcheck._agent.clock import Clock, parse_rfc3339
from healthcheck._agent.config import CheckSpec
from healthcheck._protocol import Status
from healthcheck.sdk.text import CONDITION_LIMIT, one_line

# What one condition or event may carry. One PATCH carries every condition, so a plugin's
# 4 MiB message would make the API server refuse them all; a message is cut to
# CONDITION_LIMIT (1 KiB) bytes here, whatever its source (a check, a program's output, the
# node's existing status), and reasons and types to WORD_LIMIT.
WORD_LIMIT = 256

STATUS_WORDS = {Status.OK: "False", Status.PROBLEM: "True", Status.UNKNOWN: "Unknown"}


def _bound_text(item: NodeCondition | Event) -> None:
    """Cut a new condition's or event's reason and message, in place (it is frozen after)."""
    object.__setattr__(item, "reason", one_line(item.reason, WORD_LIMIT))
    object.__setattr__(item, "message", one_line(item.message, CONDITION_LIMIT))


@dataclass(frozen=True, slots=True)
class NodeCondition:
    """One NodeCondition as we keep it: type, status word, reason, message, transition time.

    The reason is cut to :data:`WORD_LIMIT` and the message to ``CONDITION_LIMIT`` bytes, on
    one line, whatever their source."""

    type: str
    status: str
    reason: str
    message: str
    transition: float

    def __post_init__(self) -> None:
        _bound_text(self)

    def __repr__(self) -> str:
        return f"NodeCondition({self.type}={self.status}, {self.reason!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Event:
    """An Event to record on the Node: ``Normal`` (NPD's info) or ``Warning`` (warn); reason and
    message bounded as :class:`NodeCondition`'s are."""

    type: str
    reason: str
    message: str

    def __post_init__(self) -> None:
        _bound_text(self)

    def __repr__(self) -> str:
        return f"Event({self.type}, {self.reason!r}, {self.message!r})"


def go_quote(text: str) -> str:
    """Go's ``%q`` for the printable text we carry (JSON escaping agrees with it there)."""
    return json.dumps(text, ensure_ascii=False)


def change_event(cond: NodeCondition) -> Event:
    """NPD's GenerateConditionChangeEvent."""
    message = (
        f"Node condition {cond.type} is now: {cond.status}, reason: {cond.reason}, "
        f"message: {go_quote(cond.message)}"
    )
    return Event("Warning" if cond.status == "True" else "Normal", cond.reason, message)


def next_condition(
    current: NodeCondition,
    status: Status,
    message: str,
    *,
    reason: str,
    healthy_reason: str,
    healthy_message: str,
    now: float,
    message_change_updates: bool = False,
) -> NodeCondition | None:
    """The condition after a permanent check reported ``status``; ``None`` when unchanged.

    The table of spec 2.6: recovery restores the default reason and message; Unknown keeps the
    default reason with the check's message; staying False or Unknown changes nothing.
    """
    new = STATUS_WORDS[Status(status)]
    old = current.status
    if old == "True" and new == "True":
        if reason != current.reason or (message_change_updates and message != current.message):
            return NodeCondition(current.type, "True", reason, message, now)
        return None
    if new == "True":
        return NodeCondition(current.type, "True", reason, message, now)
    if new == old:
        return None  # False -> False, Unknown -> Unknown: the first Unknown message is kept
    if new == "False":
        return NodeCondition(current.type, "False", healthy_reason, healthy_message, now)
    return NodeCondition(current.type, "Unknown", healthy_reason, message, now)


def _text_field(value: object) -> str:
    """A string field of the node's JSON; anything else (a nested object) counts as empty."""
    return value if isinstance(value, str) else ""


class ConditionTable:
    """The conditions the agent owns, thread-safe; records what changed since the last sync."""

    def __init__(
        self, specs: Iterable[CheckSpec], clock: Clock, message_change_updates: bool = False
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._specs = {s.condition: s for s in specs}
        self._conditions: dict[str, NodeCondition | None] = dict.fromkeys(self._specs)
        self._message_change_updates = message_change_updates
        self.version = 0  # bumped on every change, so the reporter knows what it has sent

    def adopt(
        self, node_conditions: object, log: Callable[[str], object] | None = None
    ) -> list[str]:
        """Take the node's existing status for our types that no check has reported yet.

        The node's JSON is not ours: an entry that is not an object with a string ``type``
        (or a ``conditions`` that is not a list) is skipped, and ``log`` gets one bounded
        line saying how many were.
        """
        adopted: list[str] = []
        entries: list[object]
        if node_conditions is None:
            entries = []
        elif isinstance(node_conditions, list):
            entries = node_conditions
        else:
            entries = [node_conditions]  # counted below as one malformed entry
        skipped = 0
        with self._lock:
            for item in entries:
                ctype = item.get("type") if isinstance(item, dict) else None
                # A type that is a list would be unhashable in the lookup below.
                if not isinstance(item, dict) or not isinstance(ctype, str):
                    skipped += 1
                    continue
                if ctype not in self._conditions or self._conditions[ctype] is not None:
                    continue
                status = item.get("status")
                if status not in ("True", "False", "Unknown"):
                    continue
                transition = parse_rfc3339(item.get("lastTransitionTime")) or self._clock.time()
                self._conditions[ctype] = NodeCondition(
                    ctype,
                    status,
                    _text_field(item.get("reason")),
                    _text_field(item.get("message")),
                    transition,
                )
                adopted.append(ctype)
            if adopted:
                self.version += 1
        if skipped and log is not None:
            log(f"skipped {skipped} malformed node condition(s) (no string type)")
        return adopted

    def apply(self, spec: CheckSpec, status: Status, message: str) -> list[Event]:
        """Feed one permanent check's result through the state machine; the events it raises."""
        message = one_line(message, CONDITION_LIMIT)
        with self._lock:
            now = self._clock.time()
            if spec.condition not in self._conditions:
                return []  # not a condition we own (cannot happen after config validation)
            current = self._conditions[spec.condition]
            if current is None:
                # First word for this type this run: start from NPD's initial False/default, so
                # a problem found at start raises its event; an OK result is reported as False.
                current = NodeCondition(
                    spec.condition, "False", spec.healthy_reason, spec.healthy_message, now
                )
                self._conditions[spec.condition] = current
                self.version += 1
            updated = next_condition(
                current,
                status,
                message,
                reason=spec.reason,
                healthy_reason=spec.healthy_reason,
                healthy_message=spec.healthy_message,
                now=now,
                message_change_updates=self._message_change_updates,
            )
            if updated is None:
                return []
            self._conditions[spec.condition] = updated
            self.version += 1
            return [change_event(updated)]

    def snapshot(self) -> tuple[int, list[NodeCondition]]:
        """``(version, known conditions)`` in configuration order."""
        with self._lock:
            return self.version, [c for c in self._conditions.values() if c is not None]

    def get(self, ctype: str) -> NodeCondition | None:
        with self._lock:
            return self._conditions.get(ctype)


def temporary_events(spec: CheckSpec, status: Status, message: str) -> list[Event]:
    """A temporary check raises a Warning with the raw message for any non-OK result."""
    if Status(status) == Status.OK:
        return []
    return [Event("Warning", spec.reason, message)]
