"""The one deadline the runner, the agent's scheduler and its shutdown wait on.

A wait handed to the platform's timers must be a number they take: NaN, a negative or a
year-long timeout raise (OverflowError) or never fire, and they would do so in a thread where
nobody sees it. :func:`waitable` holds any timeout to ``0 .. MAX_DURATION``; :class:`Deadline` is
a point on the monotonic clock built from one, with the seconds left before it.

The one-shot path imports this module (through the runner): it imports only ``time`` and the
declaration module the runner loads anyway.
"""

from __future__ import annotations

import time

from healthcheck._declaration import MAX_DURATION


def waitable(timeout: float) -> float:
    """``timeout`` as a wait the platform's timers take (0 to 8760h): front doors refuse more than
    :data:`~healthcheck._declaration.MAX_DURATION` when they parse it; a caller that did not is
    held to it here rather than raising OverflowError in the thread that waits."""
    if timeout != timeout:  # NaN
        return MAX_DURATION
    return min(max(float(timeout), 0.0), MAX_DURATION)


class Deadline:
    """``seconds`` (held to :func:`waitable`) from ``start`` (default: now) on the monotonic
    clock."""

    __slots__ = ("at", "seconds", "start")

    def __init__(self, seconds: float, start: float | None = None) -> None:
        self.seconds = waitable(seconds)
        self.start = time.monotonic() if start is None else start
        self.at = self.start + self.seconds

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative): what a wait may take."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self.at

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self.start

    def __repr__(self) -> str:
        return f"Deadline({self.seconds!r}s, {self.remaining():.3f}s left)"
