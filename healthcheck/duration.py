"""Durations written as NPD (Go's time.ParseDuration) writes them: ``30s``, ``5m``, ``1h30m``."""

from __future__ import annotations

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 micro sign
    "μs": 1e-6,  # U+03BC Greek small letter mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_HINT = "use a number with a unit, e.g. 30s, 5m, 1h30m, 250ms"


class DurationError(ValueError):
    """A duration string that Go's time.ParseDuration would reject."""


def parse_duration(text: str) -> float:
    """Parse a Go duration string into seconds.

    Accepts exactly what Go accepts: an optional sign, then one or more ``<number><unit>``
    pairs where the number may have a fraction; ``0`` alone needs no unit.
    """
    original = text
    if not isinstance(text, str):
        raise DurationError(f"invalid duration {text!r}: {_HINT}")
    sign = 1.0
    if text[:1] in ("-", "+"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise DurationError(f'invalid duration "{original}": {_HINT}')
    total = 0.0
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and text[i].isdigit() and text[i].isascii():
            i += 1
        whole = text[start:i]
        frac = ""
        if i < n and text[i] == ".":
            i += 1
            fstart = i
            while i < n and text[i].isdigit() and text[i].isascii():
                i += 1
            frac = text[fstart:i]
        if not whole and not frac:
            raise DurationError(f'invalid duration "{original}": {_HINT}')
        ustart = i
        while i < n and text[i] != "." and not (text[i].isdigit() and text[i].isascii()):
            i += 1
        unit = text[ustart:i]
        if not unit:
            raise DurationError(f'invalid duration "{original}" (missing unit): {_HINT}')
        if unit not in _UNITS:
            raise DurationError(f'invalid duration "{original}" (unknown unit "{unit}"): {_HINT}')
        value = float(f"{whole or '0'}.{frac or '0'}")
        total += value * _UNITS[unit]
    return sign * total


def format_duration(seconds: float) -> str:
    """Write seconds the way NPD's shipped configs do: ``10s``, ``5m``, ``1h30m``, ``250ms``."""
    if seconds == 0:
        return "0s"
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
