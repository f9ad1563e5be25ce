"""client-go's event correlator (``tools/record/events_cache.go``), in the order it applies:

1. spam filter: per source + involved object + type, a token bucket with a burst of 25 that
   refills one token every 5 minutes; an event without a token is dropped;
2. aggregator: events that differ only in their message are *similar*; from the 10th distinct
   message within 10 minutes on, they are folded into one event whose message starts with
   ``(combined from similar events): ``;
3. logger: an event identical to one already recorded (same key) becomes a PATCH of that
   event's ``count``, ``message`` and ``lastTimestamp``; otherwise a new event is POSTed.

Caches are LRU with client-go's 4096 entries and every message is cut to
:data:`~healthcheck.sdk.text.CONDITION_LIMIT` bytes (1 KiB) on one line, so memory stays bounded
(at most a few MiB however hostile the messages) and no Event is too large to send.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

from healthcheck._agent.clock import Clock, rfc3339
from healthcheck.sdk.text import CONDITION_LIMIT, one_line

MAX_LRU = 4096
SPAM_BURST = 25
SPAM_REFILL_SECONDS = 300.0
AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
COMBINED_PREFIX = "(combined from similar events): "


class _LRU(collections.OrderedDict[tuple[str, ...], Any]):
    def __init__(self, limit: int = MAX_LRU) -> None:
        super().__init__()
        self.limit = limit

    def get_recent(self, key: tuple[str, ...]) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def put(self, key: tuple[str, ...], value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass(frozen=True, slots=True, eq=False)
class EventAction:
    """What to send: ``create`` a new Event object, or ``patch`` an existing one."""

    verb: str
    name: str
    body: dict[str, Any]
    patch: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"EventAction({self.verb} {self.name})"


class EventCorrelator:
    """Turns (type, reason, message) into POSTs and PATCHes as client-go's recorder does."""

    def __init__(self, node: str, namespace: str, component: str, clock: Clock) -> None:
        self.node = node
        self.namespace = namespace
        self.component = component
        self.clock = clock
        self.node_uid = ""
        self._spam = _LRU()
        self._aggregate = _LRU()
        self._observed = _LRU()
        self.filtered = 0
        self._last_name_ns = 0

    def _allow(self, event_type: str) -> bool:
        # client-go's getSpamKey: source, involved object and type (not reason or message).
        key = (self.component, self.node, "Node", self.node, event_type)
        now = self.clock.monotonic()
        bucket = self._spam.get_recent(key)
        if bucket is None:
            bucket = [float(SPAM_BURST), now]
        tokens: float = bucket[0]
        last: float = bucket[1]
        tokens = min(float(SPAM_BURST), tokens + (now - last) / SPAM_REFILL_SECONDS)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._spam.put(key, [tokens, now])
        return allowed

    def correlate(self, event_type: str, reason: str, message: str) -> EventAction | None:
        """The action for one new event, or ``None`` when the spam filter drops it."""
        reason = one_line(reason, 256)
        message = one_line(message, CONDITION_LIMIT)
        if not self._allow(event_type):
            self.filtered += 1
            return None
        wall = self.clock.time()
        now = self.clock.monotonic()
        aggregate_key = (self.component, self.node, event_type, reason)
        record = self._aggregate.get_recent(aggregate_key)
        if record is None or now - record[1] > AGGREGATE_INTERVAL:
            record = [set(), now]
        record[0].add(message)
        record[1] = now
        self._aggregate.put(aggregate_key, record)
        key: tuple[str, ...] = (*aggregate_key, message)
        if len(record[0]) >= AGGREGATE_MAX_EVENTS:
            record[0].pop()  # client-go's PopAny keeps the set just under the threshold
            message = one_line(COMBINED_PREFIX + message, CONDITION_LIMIT)
            key = aggregate_key
        stamp = rfc3339(wall)
        observed = self._observed.get_recent(key)
        if observed is not None:
            name, first, count = observed
            count += 1
            self._observed.put(key, (name, first, count))
            patch = {"count": count, "lastTimestamp": stamp, "message": message}
            return EventAction(
                "patch",
                name,
                self._body(name, event_type, reason, message, first, stamp, count),
                patch,
            )
        # client-go names an event <object>.<UnixNano in hex>; keep names unique when the
        # clock is coarse (or fake) by never reusing a nanosecond.
        self._last_name_ns = max(self._last_name_ns + 1, int(wall * 1e9))
        name = f"{self.node}.{self._last_name_ns:x}"
        self._observed.put(key, (name, stamp, 1))
        return EventAction(
            "create", name, self._body(name, event_type, reason, message, stamp, stamp, 1)
        )

    def _body(
        self,
        name: str,
        event_type: str,
        reason: str,
        message: str,
        first: str,
        last: str,
        count: int,
    ) -> dict[str, Any]:
        involved = {
            "apiVersion": "v1",
            "kind": "Node",
            "name": self.node,
            "namespace": self.namespace,
        }
        if self.node_uid:
            involved["uid"] = self.node_uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": self.namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "source": {"component": self.component, "host": self.node},
            "firstTimestamp": first,
            "lastTimestamp": last,
            "count": count,
            "type": event_type,
        }
