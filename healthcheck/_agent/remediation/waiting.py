"""Taking the node's remediation slot, and the wait for one: retried with jitter, announced once
by an Event when the wait starts and once when a slot is had, counted in the waiting metrics.

:class:`SlotWait` is the controller's one door to :class:`~.slots.Budget`; the controller asks
:meth:`SlotWait.take` on each tick where a rule needs a slot, and :meth:`SlotWait.stop` when none
does any more.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from healthcheck._agent.remediation.metrics import RemediationMetrics
from healthcheck._agent.remediation.slots import Budget

Emit = Callable[[str, str, str], object]


class SlotWait:
    """Whether this node holds a slot, and since when (and why) it has been waiting for one.

    ``emit(kind, reason, message)`` records an Event; ``pause`` is the time between two tries
    (jittered by +/- 20 %)."""

    def __init__(
        self,
        budget: Budget,
        emit: Emit,
        metrics: RemediationMetrics | None,
        pause: float,
        rng: random.Random,
    ) -> None:
        self.budget = budget
        self._emit = emit
        self._metrics = metrics
        self._pause = pause
        self._rng = rng
        self.since: float | None = None  # monotonic time the wait began; None when not waiting
        self.why = ""
        self.retry_at = 0.0
        self._counted = 0.0  # monotonic time up to which waiting is in the metric

    def _count(self, now: float) -> None:
        """Add the time waited since the last count to the metric (it grows while waiting)."""
        if self._metrics is not None and self.since is not None:
            self._metrics.wait_seconds.inc(max(0.0, now - self._counted))
        self._counted = now

    def stop(self, now: float) -> None:
        """No longer waiting: a slot was taken, or nothing needs one any more."""
        self._count(now)
        self.since = None
        self.why = ""

    def take(self, now: float) -> bool:
        """Hold a slot (renewing the one held); ``False`` while waiting for one."""
        budget = self.budget
        if budget.held is not None:
            if budget.renew():
                return True
            self._emit(
                "Warning", "RemediationSlotLost", "lost the remediation slot (not renewed in time)"
            )
        if now < self.retry_at:
            return False
        ok, why = budget.acquire()
        if ok:
            if self.since is not None:
                waited = now - self.since
                self.stop(now)
                self._emit(
                    "Normal",
                    "RemediationSlotAcquired",
                    f"got a remediation slot after waiting {waited:.0f}s",
                )
            return True
        if self.since is None:
            self.since = self._counted = now
            self._emit("Normal", "RemediationWaiting", f"waiting for a remediation slot: {why}")
        self._count(now)
        self.why = why
        self.retry_at = now + self._pause * self._rng.uniform(0.8, 1.2)
        return False
