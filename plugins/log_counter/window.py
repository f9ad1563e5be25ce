"""Time windows for reading logs: where a count over the recent past starts.

Pure functions of ``now`` and the uptime, so tests pin every case without a clock; only
:func:`boot_time` touches the machine.
"""

from __future__ import annotations

import time

from healthcheck.sdk.duration import DurationError, parse_duration


def uptime(proc_root: str = "/proc") -> float:
    """Seconds since boot, as NPD takes it from sysinfo(2).

    Read from /proc/uptime rather than through psutil: importing psutil costs ~15 ms of a ~40 ms
    log-counter cold start (python -X importtime), and psutil.boot_time() comes from /proc/stat
    with one-second resolution. psutil is the fallback where /proc/uptime is unreadable.
    """
    try:
        with open(f"{proc_root}/uptime", "rb") as fh:
            return float(fh.read(64).split()[0])
    except (OSError, ValueError, IndexError):
        # Here, not at the top: psutil costs ~15 ms to import (see above), only for this fallback.
        import psutil

        return time.time() - psutil.boot_time()


def _optional_duration(text: str, what: str) -> float | None:
    """NPD's GetStartTime error, in Go's words: ``failed to parse lookback duration "5x": time:
    unknown unit "x" in duration "5x"``."""
    if text == "":
        return None
    try:
        return parse_duration(text)
    except DurationError as exc:
        # Here, not at the top: pflag costs ~2.5 ms to import; only an error message needs it.
        from healthcheck.sdk.pflag import go_quote

        message = f"failed to parse {what} duration {go_quote(text)}: {exc.go_message}"
        raise DurationError(message, message) from None


def lookback_start(now: float, uptime: float, lookback: str = "", delay: str = "") -> float:
    """Start of a log window as NPD's GetStartTime computes it, in epoch seconds.

    start = max(boot + delay, now - lookback), with boot = now - uptime. An empty ``lookback``
    means no history (now - 0); an empty ``delay`` means none. A delay longer than the uptime puts
    the start in the future, which reads nothing. Raises ``DurationError`` naming the bad value.
    """
    delay_seconds = _optional_duration(delay, "delay")
    lookback_seconds = _optional_duration(lookback, "lookback")
    start = now - uptime + (delay_seconds or 0.0)
    return max(start, now - (lookback_seconds or 0.0))


def validate_durations(lookback: str, delay: str) -> None:
    """Raise ``DurationError`` when ``lookback`` or ``delay`` is neither empty nor a duration."""
    _optional_duration(delay, "delay")
    _optional_duration(lookback, "lookback")
