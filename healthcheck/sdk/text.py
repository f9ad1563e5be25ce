"""Bounded one-line text: the single way untrusted text leaves this program.

Checker messages, plugin output, metadata fields, HTTP reason phrases, YAML values and argv
echoed in errors all pass through :func:`one_line` before they reach protocol stdout, a
NodeCondition, an Event or a log line. It is cheap to import (no imports at all), because every
one-shot check pays for it. Documented in ``docs/sdk.md``.
"""

from __future__ import annotations

__all__ = [
    "CONDITION_LIMIT",
    "LOG_LIMIT",
    "PROTOCOL_LIMIT",
    "RESULT_LIMIT",
    "one_line",
    "short_repr",
]

# Limits callers pick from, so that the same kind of text is cut the same way everywhere.
PROTOCOL_LIMIT = 80  # NPD's default max_output_length
CONDITION_LIMIT = 1024  # a NodeCondition or Event message
LOG_LIMIT = 512  # one value inside a log line or an error message
RESULT_LIMIT = 4096  # a checker's message as the runner hands it on (before any of the above)

# Work is bounded by the input's first characters only: a 4 MiB message costs as much as a short
# one. Leading junk beyond this many characters (control characters, blanks) yields "".
_SCAN_SLACK = 4096


def one_line(text: object, limit: int = PROTOCOL_LIMIT, *, marker: str = "") -> str:
    """Return ``text`` as one printable line of at most ``limit`` UTF-8 bytes.

    Control characters (newlines, tabs, escapes, Unicode line and paragraph separators, lone
    surrogates) become spaces, the line is trimmed, and the cut falls on a character boundary
    so the result is always valid UTF-8. When the line was cut and ``marker`` is given (say
    ``"…"``), the marker ends the result, still within ``limit`` bytes. A non-string is turned
    into a string with ``str()`` first; pass only objects whose ``str()`` is cheap.
    """
    if limit < 0:
        raise ValueError("limit must be >= 0")
    if not isinstance(text, str):
        text = str(text)
    # Only the first limit + slack characters can reach the result (each is at least one byte).
    window = limit + _SCAN_SLACK
    cut_early = len(text) > window
    if cut_early:
        text = text[:window]
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = text.strip()
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit and not (cut_early and marker):
        return encoded.decode("utf-8", "replace")
    keep = limit - len(marker.encode("utf-8")) if marker else limit
    if keep < 0:
        return encoded[:limit].decode("utf-8", "ignore").rstrip()
    # "ignore" drops only the partial character the cut leaves at the end.
    return encoded[:keep].decode("utf-8", "ignore").rstrip() + marker


def short_repr(value: object, limit: int = LOG_LIMIT) -> str:
    """``repr(value)`` for a value from outside (YAML, JSON, argv), bounded in work and length.

    Strings, numbers, booleans and ``None`` look as ``repr`` shows them; a container is only
    named with its size (``<a list of 3 items>``), never walked, so a structure built from
    aliases or nesting costs nothing to describe; any other object is named by its type. The
    result passes through :func:`one_line` with ``limit``.
    """
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif value is None or isinstance(value, (bool, float)):
        text = repr(value)
    elif isinstance(value, int):
        # int -> str is quadratic in the digits (and refused past 4300 of them).
        text = repr(value) if value.bit_length() <= 256 else f"<a {value.bit_length()}-bit integer>"
    elif isinstance(value, (list, tuple, dict, set, frozenset)):
        text = f"<a {type(value).__name__} of {len(value)} items>"
    else:
        text = f"<{type(value).__name__}>"
    return one_line(text, limit)
