"""Spreading the agent's reads and writes over time, so that a fleet never calls in step.

Two moments line thousands of agents up: a DaemonSet rollout (every agent restarts within a
minute) and a fleet-wide change (a maintenance wave flips one condition on every node). Both are
spread by a random delay drawn from a generator seeded with the node name, so one node always
draws the same sequence (reproducible) and two nodes draw different ones:

- **startup**: a restarted agent holds its first PATCH for ``startup_window * U(0, 1)``
  unless something urgent is to be said (a condition that is not False, or an Event). By
  default it reads its node at once (fail-safe adoption; a first start, on a node without our
  conditions, is then not held). With ``hold_read`` the read waits for the slot too, so a
  rollout reads no node at once either: the checks run meanwhile and their results wait in a
  :class:`StartupHold` (not in the condition table), so that when the node is read they are
  applied *after* adoption, exactly as if the read had come first (same transitions, same
  Events, lastTransitionTime kept). A result that is not OK or an Event to send ends the hold
  at once: the node is read and the change sent after the usual batch window and change delay.
  Nothing is lost by waiting: the node still carries the conditions the previous agent wrote.
  Heartbeats follow from the first PATCH, so they keep that phase instead of aligning on the
  rollout.
- **change**: a changed condition is sent ``U(0, change_window)`` after the batch window instead
  of at once; changes meanwhile (a flip and its flip back) ride in the same PATCH, and the Events
  they raised wait for it.
"""

from __future__ import annotations

import collections
import hashlib
import random
import threading
from collections.abc import Callable, Iterable
from typing import Protocol

from healthcheck._protocol import Status


class HasStatus(Protocol):
    """What :func:`urgent` reads of a condition."""

    @property
    def status(self) -> str: ...


def node_seed(node: str) -> int:
    """A stable 64-bit seed from the node name (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256(node.encode("utf-8", "replace")).digest()[:8], "big")


class Spread:
    """Per-node delays: the startup offset (drawn once) and a fresh delay per change batch."""

    def __init__(
        self,
        node: str,
        startup_window: float,
        change_window: float,
        rng: random.Random | None = None,
        *,
        hold_read: bool = False,
    ) -> None:
        if startup_window < 0 or change_window < 0:
            raise ValueError("spread windows must be >= 0")
        self.startup_window = float(startup_window)
        self.change_window = float(change_window)
        self.hold_read = hold_read  # the start-up read waits for the slot too
        self._rng = rng or random.Random(node_seed(node))  # noqa: S311 - spreading, not secrets
        self.startup_offset = self._rng.uniform(0.0, self.startup_window)

    def change_delay(self) -> float:
        """Extra seconds to hold the next change batch (0 when the window is 0)."""
        if self.change_window <= 0:
            return 0.0
        return self._rng.uniform(0.0, self.change_window)


def urgent(conditions: Iterable[HasStatus]) -> bool:
    """True when a condition says something is wrong (True or Unknown): never held at start."""
    return any(c.status != "False" for c in conditions)


Held = tuple[object, Status, str]  # (the check's spec, its status, its message)


class StartupHold:
    """Permanent checks' results that arrive before the node is read, in arrival order.

    Thread-safe: results arrive from the checks' threads, :meth:`release` runs on the
    reporter's. Once released (the node was read, or the read failed), it holds nothing more.
    """

    def __init__(self, active: bool) -> None:
        self._lock = threading.Lock()
        self._items: collections.deque[Held] = collections.deque()
        self.active = active

    def hold(self, spec: object, status: Status, message: str) -> bool:
        """Keep this result for later and say ``True``; ``False`` once the hold is over."""
        with self._lock:
            if not self.active:
                return False
            self._items.append((spec, Status(status), message))
            return True

    def urgent(self) -> bool:
        """A held result says something is wrong: the node must be read now."""
        with self._lock:
            return any(status != Status.OK for _spec, status, _message in self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def release(self, apply: Callable[[object, Status, str], None]) -> None:
        """Feed every held result to ``apply`` in order, then stop holding.

        A result held while this runs is applied after the ones before it; the hold ends only
        with the queue empty, so no later result can overtake a held one.
        """
        while True:
            with self._lock:
                if not self._items:
                    self.active = False
                    return
                spec, status, message = self._items.popleft()
            apply(spec, status, message)
