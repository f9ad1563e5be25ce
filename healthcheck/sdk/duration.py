"""Durations written as NPD (Go's time.ParseDuration) writes them: ``30s``, ``5m``, ``1h30m``.

Documented in ``docs/sdk.md``.
"""

from __future__ import annotations

from _thread import TIMEOUT_MAX as _TIMER_MAX

from healthcheck.sdk.text import LOG_LIMIT, one_line

__all__ = [
    "DurationError",
    "format_duration",
    "parse_duration",
    "parse_duration_ns",
    "time_quote",
]

# Go's unitMap, in nanoseconds.
_UNITS = {
    b"ns": 1,
    b"us": 1_000,
    "µs".encode(): 1_000,  # U+00B5 micro sign
    "μs".encode(): 1_000,  # U+03BC Greek small letter mu
    b"ms": 1_000_000,
    b"s": 1_000_000_000,
    b"m": 60_000_000_000,
    b"h": 3_600_000_000_000,
}
_HINT = "use a number with a unit, e.g. 30s, 5m, 1h30m, 250ms"
_MAX_NS = (1 << 63) - 1  # Go's time.Duration is an int64 of nanoseconds
# Python's timers (threading waits, socket and select timeouts) refuse anything longer than
# _TIMER_MAX, about 0.85 s less than Go's largest duration; such a duration is refused at parse
# time.

_DIGITS = b"0123456789"


class DurationError(ValueError):
    """A duration string that Go's time.ParseDuration would reject.

    ``str()`` names the input with a hint on how to write it; :attr:`go_message` is Go's own
    wording (``time: unknown unit "x" in duration "5x"``), which the NPD drop-ins print.
    """

    def __init__(self, message: str, go_message: str = "") -> None:
        super().__init__(message)
        self.go_message = go_message or message


def time_quote(text: str | bytes) -> str:
    """Go's ``time.quote``: double quotes, ``\\"`` and ``\\\\`` escaped, and every byte of a
    control or non-ASCII character written as ``\\xNN``."""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    out = ['"']
    for byte in data:
        if byte < 0x20 or byte >= 0x80:
            out.append(f"\\x{byte:02x}")
        elif byte in (0x22, 0x5C):
            out.append("\\" + chr(byte))
        else:
            out.append(chr(byte))
    out.append('"')
    return "".join(out)


def _error(original: bytes, go: str, why: str = "") -> DurationError:
    shown = one_line(original.decode("utf-8", "replace"), LOG_LIMIT)
    detail = f" ({why})" if why else ""
    return DurationError(f'invalid duration "{shown}"{detail}: {_HINT}', go)


def _leading_int(s: bytes, i: int) -> tuple[int, int, bool]:
    """Go's leadingInt from ``i``: (value, next index, overflowed)."""
    x = 0
    n = len(s)
    while i < n and s[i] in _DIGITS:
        if x > (1 << 63) // 10:
            return 0, i, True
        x = x * 10 + s[i] - 48
        if x > 1 << 63:
            return 0, i, True
        i += 1
    return x, i, False


def _leading_fraction(s: bytes, i: int) -> tuple[int, float, int]:
    """Go's leadingFraction from ``i``: (digits as an integer, scale, next index)."""
    x, scale, overflow = 0, 1.0, False
    n = len(s)
    while i < n and s[i] in _DIGITS:
        if not overflow:
            if x > ((1 << 63) - 1) // 10:
                overflow = True
            else:
                y = x * 10 + s[i] - 48
                if y > 1 << 63:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, i


def parse_duration_ns(text: str | bytes) -> int:
    """Go's ``time.ParseDuration``, exactly (same bytes accepted, same overflow, same errors),
    in integer nanoseconds."""
    if isinstance(text, str):
        s = text.encode("utf-8", "surrogateescape")
    elif isinstance(text, bytes):
        s = text
    else:
        raise DurationError(
            f"invalid duration {type(text).__name__}: {_HINT}", "time: invalid duration"
        )
    original = s
    invalid = "time: invalid duration " + time_quote(original)
    neg = False
    if s[:1] in (b"-", b"+"):
        neg = s[:1] == b"-"
        s = s[1:]
    if s == b"0":
        return 0
    if not s:
        raise _error(original, invalid)
    d = 0
    i, n = 0, len(s)
    while i < n:
        if not (s[i] == 0x2E or s[i] in _DIGITS):
            raise _error(original, invalid)
        start = i
        v, i, overflow = _leading_int(s, i)
        if overflow:
            raise _error(original, invalid, "too large")
        pre = i != start
        post = False
        f, scale = 0, 1.0
        if i < n and s[i] == 0x2E:
            i += 1
            fstart = i
            f, scale, i = _leading_fraction(s, i)
            post = i != fstart
        if not pre and not post:
            raise _error(original, invalid)
        ustart = i
        while i < n and not (s[i] == 0x2E or s[i] in _DIGITS):
            i += 1
        if i == ustart:
            raise _error(
                original, "time: missing unit in duration " + time_quote(original), "missing unit"
            )
        unit_text = s[ustart:i]
        unit = _UNITS.get(unit_text)
        if unit is None:
            shown = one_line(unit_text.decode("utf-8", "replace"), LOG_LIMIT)
            raise _error(
                original,
                f"time: unknown unit {time_quote(unit_text)} in duration {time_quote(original)}",
                f'unknown unit "{shown}"',
            )
        if v > (1 << 63) // unit:
            raise _error(original, invalid, "too large")
        v *= unit
        if f > 0:
            # Go computes the fraction in float64, truncated: the same here, bit for bit.
            v += int(float(f) * (float(unit) / scale))
            if v > 1 << 63:
                raise _error(original, invalid, "too large")
        d += v
        if d > 1 << 63:
            raise _error(original, invalid, "too large")
    if neg:
        return -d
    if d > _MAX_NS:
        raise _error(original, invalid, "too large")
    return d


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds.

    Accepts exactly what Go's time.ParseDuration accepts (an optional sign, then one or more
    ``<number><unit>`` pairs where the number may have a fraction; ``0`` alone needs no unit;
    at most 2562047h47m16.854775807s either way), except the last 0.85 s of that range, which
    Python's timers cannot wait for.
    """
    ns = parse_duration_ns(text)
    seconds = ns / 1e9
    if abs(seconds) > _TIMER_MAX:
        shown = one_line(text if isinstance(text, str) else repr(text), LOG_LIMIT)
        raise DurationError(
            f'invalid duration "{shown}" (longer than {_TIMER_MAX:.0f}s, the longest wait '
            f"this platform's timers accept): {_HINT}",
            "time: invalid duration " + time_quote(text),
        )
    return seconds


def format_duration(seconds: float) -> str:
    """Write seconds the way NPD's shipped configs do: ``10s``, ``5m``, ``1h30m``, ``250ms``.

    Total: a value no parse could give (a plugin's ``inf`` or ``nan``) is written as Python
    writes it, never an OverflowError inside an error message being built.
    """
    if seconds == 0:
        return "0s"
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return f"{seconds}s"
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        millis = seconds * 1000
        if millis == int(millis):
            return f"{sign}{int(millis)}ms"
        return f"{sign}{round(seconds * 1e6)}us"
    whole = int(seconds)
    rest = seconds - whole
    hours, rem = divmod(whole, 3600)
    minutes, secs = divmod(rem, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or rest:
        parts.append(f"{secs + rest:g}s")
    return sign + "".join(parts)
