"""Time as the agent sees it, injectable so tests can drive heartbeats without sleeping."""

from __future__ import annotations

import calendar
import threading
import time


class Clock:
    """Wall time for API timestamps, monotonic time for intervals."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock(Clock):
    """A clock that moves only when told to (for tests and benchmarks)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = start
        self._mono = 1000.0

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._wall += seconds
            self._mono += seconds


def rfc3339(timestamp: float) -> str:
    """``2024-01-02T03:04:05Z``: the second-precision form Kubernetes uses for metav1.Time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def parse_rfc3339(text: object) -> float | None:
    """Seconds since the epoch from a metav1.Time string; ``None`` when absent or malformed."""
    if not isinstance(text, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None
