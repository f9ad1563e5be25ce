"""Sends conditions and events to the API server, cheaply and without ever losing the latest state.

- Fail-safe start: nothing is PATCHed before the node has been read once and its existing
  status of our condition types adopted. With ``Spread.hold_read`` that read waits for the
  node's start-up slot, and so do the checks' results (:meth:`Reporter.hold_result`), unless
  one is not OK or an Event is due (see :mod:`healthcheck._agent.spread`).
- One strategic-merge PATCH of ``nodes/<name>/status`` carries all our known conditions. It is
  sent ``batch_window`` after the first change (changes meanwhile ride along), so within 1 s of
  any change; otherwise only every ``heartbeat`` seconds.
- Failures (unreachable, timeouts, 5xx, 409, 429) keep the state and retry with capped
  exponential backoff and full jitter, honouring Retry-After. The cap keeps the re-send within
  10 s of the server's return. Every path honours the retry time it announced: the thread,
  :meth:`Reporter.flush` (``--once``) and :meth:`Reporter.final` (shutdown: at most one more
  attempt, and none when the announced retry falls after the deadline).
- Events pass client-go's correlator, then wait in a bounded queue; when it is full the oldest
  is dropped and counted, so memory cannot grow while the server is away.

:meth:`Reporter.step` does whatever is due at the clock's current time and says how long until
the next thing is due, so tests drive it with a fake clock instead of sleeping.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from healthcheck._agent.clock import Clock, rfc3339
from healthcheck._agent.conditions import ConditionTable, Event, NodeCondition
from healthcheck._agent.events import EventAction, EventCorrelator
from healthcheck._agent.kube import Api, ApiError
from healthcheck._agent.loop import StepLoop
from healthcheck._agent.spread import Spread, StartupHold, urgent
from healthcheck._protocol import Status
from healthcheck.sdk.text import LOG_LIMIT, one_line

BATCH_WINDOW = 0.5
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0
EVENT_QUEUE = 1000
# Event writes the server refuses for good (409 on create means it exists already: not refused).
REFUSED = (400, 403, 404, 422)


def patch_body(conditions: Iterable[NodeCondition], now: float) -> dict[str, Any]:
    """NPD's ``{"status":{"conditions":[...]}}`` with a fresh heartbeat on every condition."""
    stamp = rfc3339(now)
    return {
        "status": {
            "conditions": [
                {
                    "type": c.type,
                    "status": c.status,
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": rfc3339(c.transition),
                    "reason": c.reason,
                    "message": c.message,
                }
                for c in conditions
            ]
        }
    }


class Reporter(StepLoop):
    """Owns all API traffic of the agent; one thread calls :meth:`step` (or :meth:`run`)."""

    loop_name = "reporter"

    def __init__(
        self,
        api: Api,
        node: str,
        table: ConditionTable,
        correlator: EventCorrelator,
        clock: Clock,
        *,
        heartbeat: float = 300.0,
        namespace: str = "default",
        batch_window: float = BATCH_WINDOW,
        backoff_base: float = BACKOFF_BASE,
        backoff_cap: float = BACKOFF_CAP,
        max_events: int = EVENT_QUEUE,
        rng: random.Random | None = None,
        log: Callable[[str], None] | None = None,
        spread: Spread | None = None,
    ) -> None:
        self.api = api
        self.node = node
        self.table = table
        self.correlator = correlator
        self.clock = clock
        self.heartbeat = heartbeat
        self.namespace = namespace
        self.batch_window = batch_window
        # healthcheck._agent.spread: hold the start-up read and first PATCH, and each change batch
        self.spread = spread
        self.hold_until = clock.monotonic() + spread.startup_offset if spread else 0.0
        self._hold_read = bool(spread and spread.hold_read and self.hold_until > clock.monotonic())
        self.held = StartupHold(self._hold_read)
        self._window = batch_window
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._log = log or (lambda message: None)
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._events: collections.deque[EventAction] = collections.deque()
        self._max_events = max_events
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.adopted = False
        self.sent_version = -1
        self.dirty_since: float | None = None
        self.last_sync: float | None = None
        self.failures = 0
        self.retry_at = 0.0
        self.events_dropped = 0
        self.patches_sent = 0
        self.events_sent = 0
        self.events_refused = 0
        self.last_error = ""

    # ------------------------------------------------------------------ inputs (any thread)

    def changed(self) -> None:
        """A condition changed: send within the batch window."""
        with self._lock:
            if self.dirty_since is None:
                self._mark_dirty(self.clock.monotonic())
        self._wake.set()

    def _mark_dirty(self, now: float) -> None:
        self.dirty_since = now
        self._window = self.batch_window + (self.spread.change_delay() if self.spread else 0.0)

    def hold_result(self, spec: object, status: Status, message: str) -> bool:
        """Keep a permanent check's result until the node is read (``True``), or say ``False``
        (apply it now) once the start-up read is done or was never held."""
        if not self.held.hold(spec, status, message):
            return False
        self._wake.set()  # a problem ends the hold: let step() see it
        return True

    def _apply_held(self, spec: Any, status: Status, message: str) -> None:
        self.record(self.table.apply(spec, status, message))

    def record(self, events: Iterable[Event]) -> None:
        """Correlate and queue events; drop the oldest (and count it) when the queue is full."""
        with self._lock:
            for event in events:
                action = self.correlator.correlate(event.type, event.reason, event.message)
                if action is None:
                    continue
                if len(self._events) >= self._max_events:
                    self._events.popleft()
                    self.events_dropped += 1
                self._events.append(action)
        self._wake.set()

    def pending_events(self) -> int:
        with self._lock:
            return len(self._events)

    # --------------------------------------------------------------------------- the work

    def _backoff(self, error: ApiError, give_up_after: float | None = None) -> None:
        """Schedule the retry and say when it is; say "giving up" when it would fall after
        ``give_up_after`` (clock time), so the log never announces a retry that won't happen."""
        self.failures += 1
        self.last_error = one_line(error, LOG_LIMIT)
        delay = min(self.backoff_cap, self.backoff_base * 2 ** (self.failures - 1))
        delay = self._rng.uniform(delay / 2, delay)
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, RETRY_AFTER_CAP))
        now = self.clock.monotonic()
        self.retry_at = now + delay
        if give_up_after is not None and self.retry_at > give_up_after:
            self._log(f"{self.last_error}; giving up: no time left to retry")
        else:
            self._log(f"{self.last_error}; retrying in {delay:.1f}s")

    def _conditions_due(self, now: float) -> bool:
        version, conditions = self.table.snapshot()
        if not conditions:
            return False
        if version != self.sent_version:
            with self._lock:
                if self.dirty_since is None:
                    self._mark_dirty(now)
                since = self.dirty_since if self.dirty_since is not None else now
            return self.failures > 0 or now - since >= self._window
        return self.last_sync is None or now - self.last_sync >= self.heartbeat

    def _take_uid(self, node: object) -> None:
        """Events name the node by UID (``kubectl describe node`` finds them by it): follow a
        Node deleted and recreated under the same name, from any answer that carries it."""
        metadata = node.get("metadata") if isinstance(node, dict) else None
        uid = metadata.get("uid") if isinstance(metadata, dict) else None
        if isinstance(uid, str) and uid:
            with self._lock:
                self.correlator.node_uid = uid

    def _adopt(self) -> None:
        node = self.api.get_node(self.node)
        self._take_uid(node)
        status = node.get("status")
        if not isinstance(status, dict):
            status = {}
        adopted = self.table.adopt(status.get("conditions"), log=self._log)
        if adopted:
            self._log(f"adopted the node's existing {', '.join(adopted)}")
        else:
            self.hold_until = 0.0  # a first start: the node carries none of ours, say it now
        self.held.release(self._apply_held)  # the results that waited, as if read first
        self.adopted = True

    def _send_conditions(self, now: float) -> None:
        with self._lock:
            self.dirty_since = None
        version, conditions = self.table.snapshot()
        node = self.api.patch_node_status(self.node, patch_body(conditions, self.clock.time()))
        self._take_uid(node)
        self.sent_version = version
        self.last_sync = now
        self.patches_sent += 1

    def _send_events(self) -> None:
        while True:
            with self._lock:
                if not self._events:
                    return
                action = self._events[0]
            try:
                if action.verb == "patch" and action.patch is not None:
                    try:
                        self.api.patch_event(self.namespace, action.name, action.patch)
                    except ApiError as exc:
                        if exc.status != 404:
                            raise
                        # client-go: the event expired or was deleted, so create it afresh
                        self.api.create_event(self.namespace, action.body)
                else:
                    self.api.create_event(self.namespace, action.body)
                self.events_sent += 1
            except ApiError as exc:
                if exc.status in (*REFUSED, 409):
                    # The server will never accept this one (409 on create: it exists already).
                    if exc.status != 409:
                        self.events_refused += 1
                    self._log(f"event {action.name} rejected: {one_line(exc, LOG_LIMIT)}")
                else:
                    raise
            with self._lock:
                if self._events and self._events[0] is action:
                    self._events.popleft()

    def sync(self, force: bool = False, give_up_after: float | None = None) -> bool:
        """Do what is due now (send the conditions regardless, with ``force``).

        Returns ``False`` after a failure, which schedules the retry (logged as "giving up"
        when it would fall after ``give_up_after``, clock time). Calls are serialised, so a
        shutdown flush waits for a request already in flight instead of racing it.
        """
        with self._sync_lock:
            now = self.clock.monotonic()
            if not self.adopted and self._hold_read and not force and now < self.hold_until:
                return True  # the start-up read waits for the node's slot (step() ends it early)
            try:
                if not self.adopted:
                    self._adopt()
                if (force or self._conditions_due(now)) and self.table.snapshot()[1]:
                    self._send_conditions(now)
                if not self._events_wait_for_change(now):
                    self._send_events()
            except ApiError as exc:
                self._backoff(exc, give_up_after)
                self._unhold()
                return False
            except Exception as exc:
                # A reply nobody foresaw (JSON nested past the recursion limit, a node whose
                # fields have the wrong shapes) is one more failure to back off from: raised,
                # it would end the reporter thread and leave the agent running but reporting
                # nothing.
                error = ApiError(f"unexpected reply: {type(exc).__name__}: {one_line(exc, 200)}")
                self._backoff(error, give_up_after)
                self._unhold()
                return False
            self.failures = 0
            self.retry_at = 0.0
            return True

    def _unhold(self) -> None:
        """The node could not be read: results stop waiting for it (the table and the metrics
        show them, as when the server is away at a start without spread)."""
        if not self.adopted:
            self.held.release(self._apply_held)

    def _events_wait_for_change(self, now: float) -> bool:
        """With a change spread, Events ride with the held PATCH of the change that raised them."""
        if not self.spread or not self.spread.change_window or self.failures:
            return False
        with self._lock:
            return self.dirty_since is not None and now - self.dirty_since < self._window

    def step(self) -> float:
        """Do what is due; return the seconds until something will next be due."""
        now = self.clock.monotonic()
        if now < self.retry_at:
            return self.retry_at - now
        if now < self.hold_until and (self.adopted or self._hold_read):
            quiet = not self.pending_events() and not self.held.urgent()
            if quiet and not urgent(self.table.snapshot()[1]):
                return self.hold_until - now
            self.hold_until = 0.0  # something to say now: the hold is over
            with self._lock:
                if self.dirty_since is not None:
                    self._mark_dirty(now)  # ... after a change delay, like any change
        self.sync()
        return self._next_due()

    def _next_due(self) -> float:
        now = self.clock.monotonic()
        if self.failures:
            return max(0.0, self.retry_at - now)
        version, conditions = self.table.snapshot()
        if not conditions:
            return self.heartbeat
        if version != self.sent_version:
            with self._lock:
                since = self.dirty_since if self.dirty_since is not None else now
            return max(0.0, since + self._window - now)
        return max(0.0, (self.last_sync or now) + self.heartbeat - now)

    def settled(self) -> bool:
        """Nothing pending: our conditions as sent (so the node was read), no event queued."""
        version, conditions = self.table.snapshot()
        return (
            (not conditions or (self.adopted and version == self.sent_version))
            and not self.pending_events()
            and not len(self.held)
        )

    def pending(self) -> str:
        """What is not yet sent, in words (for the log)."""
        version, conditions = self.table.snapshot()
        parts = []
        if conditions and version != self.sent_version:
            parts.append("the node status")
        events = self.pending_events()
        if events:
            parts.append(f"{events} event{'s' if events != 1 else ''}")
        held = len(self.held)
        if held:
            parts.append(f"{held} result{'s' if held != 1 else ''} held for the start-up read")
        return " and ".join(parts) or "nothing"

    def _wait_for_retry(self, deadline: float) -> bool:
        """Sleep until the announced retry time; ``False`` (at once) if it is past ``deadline``.

        ``deadline`` is on the real monotonic clock; the retry time on the reporter's clock.
        """
        wait = self.retry_at - self.clock.monotonic()
        if wait <= 0:
            return True
        if time.monotonic() + wait >= deadline:
            return False
        time.sleep(wait)
        return True

    def _clock_deadline(self, deadline: float) -> float:
        return self.clock.monotonic() + (deadline - time.monotonic())

    def flush(self, deadline: float) -> bool:
        """Send everything pending until done or ``deadline`` (``--once``), honouring backoff.

        Batching is skipped, but each retry waits for the time its failure announced, and no
        retry is started when that time is past ``deadline`` (real monotonic clock): with the
        server away this is a handful of requests, not one every few hundred milliseconds.
        """
        while not self.settled():
            if not self._wait_for_retry(deadline):
                return False
            version = self.table.snapshot()[0]
            self.sync(
                force=version != self.sent_version, give_up_after=self._clock_deadline(deadline)
            )
        return True

    def final(self, deadline: float) -> bool:
        """Shutdown: at most one more attempt at what is pending, within ``deadline``.

        Call after :meth:`stop`: it first waits (within ``deadline``) for the reporter thread,
        so that thread cannot make an attempt of its own meanwhile. The attempt waits for the
        retry time announced by the last failure and is not made when that falls after
        ``deadline``; a failure is logged as "giving up", never as a retry.
        """
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                self._log(
                    f"shutting down: a request is still in flight; not sent: {self.pending()}"
                )
                return False
        if self.settled():
            return True
        if not self._wait_for_retry(deadline):
            wait = self.retry_at - self.clock.monotonic()
            self._log(
                f"shutting down: not sent: {self.pending()} (the retry announced is due in "
                f"{wait:.1f}s, after the shutdown deadline)"
            )
            return False
        version = self.table.snapshot()[0]
        final_try = self.clock.monotonic()  # any retry falls after it: "giving up" if it fails
        sent = self.sync(force=version != self.sent_version, give_up_after=final_try)
        if sent and self.settled():
            return True
        self._log(f"shutting down: not sent: {self.pending()}")
        return False
