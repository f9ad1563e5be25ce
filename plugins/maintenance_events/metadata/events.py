"""What every provider's parser produces: events, or a one-line reason the reply made no sense."""

from __future__ import annotations

import re
import time

from healthcheck.sdk.text import one_line

MAX_FIELD = 120  # bytes; longer ids/types/statuses are nonsense: cut rather than carried around
# Epoch seconds rather than datetime objects: importing datetime costs ~1 ms of a one-shot
# check's ~25 ms, and events need only ordering and one spelling.
_ISO = (
    r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,]\d+)?\s*(Z|z|[+-]\d\d:?\d\d|UTC|GMT)?\Z"
)
# RFC 1123 ("Mon, 19 Sep 2016 18:29:47 GMT") and AWS's variant without the weekday.
_RFC1123 = (
    r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+"
    r"(\d\d):(\d\d):(\d\d)\s*(GMT|UTC|Z)?\Z"
)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
NEVER = float("inf")


def clean(value) -> str:
    """A field from the metadata server (untrusted) as one printable line of at most
    :data:`MAX_FIELD` bytes: :func:`healthcheck.sdk.text.one_line`."""
    return one_line(value, MAX_FIELD)


def _epoch(year: int, month: int, day: int, hour: int, minute: int, second: int) -> int | None:
    """Seconds since 1970 for a UTC civil time, or ``None`` when the date does not exist."""
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not (1 <= year <= 9999 and 1 <= month <= 12):
        return None
    if not 1 <= day <= _MONTH_DAYS[month - 1] + (1 if leap and month == 2 else 0):
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    # days from civil (H. Hinnant's algorithm): exact for the proleptic Gregorian calendar
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def parse_time(text: str) -> int | None:
    """Epoch seconds (UTC) from ISO 8601 or RFC 1123 text; ``None`` when it is neither."""
    text = text.strip()
    match = re.match(_ISO, text, re.ASCII)  # ASCII: \d would take '٢٠٢٦' as 2026
    if match:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        when = _epoch(year, month, day, hour, minute, second)
        zone = match.group(7) or "Z"
        if when is not None and zone[0] in "+-":
            digits = zone[1:].replace(":", "")
            offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
            when = when - offset if zone[0] == "+" else when + offset
        return when
    match = re.match(_RFC1123, text, re.ASCII)
    if match and match.group(2).lower() in _MONTHS:
        day, _, year, hour, minute, second = match.groups()[:6]
        month = _MONTHS[match.group(2).lower()]
        return _epoch(int(year), month, int(day), int(hour), int(minute), int(second))
    return None


def format_time(when: int) -> str:
    """``2026-11-23T02:00:00Z``: the spelling the ECS metaserver and the log file use."""
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    except (OverflowError, OSError, ValueError):
        return str(when)


class Event:
    """One maintenance event: id, type, status and the not-before time as the provider gave it.

    ``when`` is the parsed not-before time in epoch seconds (``None`` when absent or
    unparsable); ``not_before`` is its ISO 8601 UTC spelling, or the cleaned original text when
    it could not be parsed.
    """

    __slots__ = ("id", "not_before", "status", "type", "when")

    def __init__(self, id: str, type: str, status: str, not_before: str = "") -> None:
        self.id = clean(id)
        self.type = clean(type)
        self.status = clean(status)
        raw = clean(not_before)
        self.when = parse_time(raw) if raw else None
        self.not_before = format_time(self.when) if self.when is not None else raw

    def key(self) -> str:
        """The identity the host_event.log writer de-duplicates on: id and status."""
        return f"{self.id}\t{self.status}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.id, self.type, self.status, self.not_before) == (
            other.id,
            other.type,
            other.status,
            other.not_before,
        )

    def __hash__(self) -> int:
        return hash((self.id, self.type, self.status, self.not_before))

    def __repr__(self) -> str:
        return f"Event({self.id!r}, {self.type!r}, {self.status!r}, {self.not_before!r})"


class Reading:
    """A parser's answer: ``events`` (possibly empty), or ``error`` when the reply was nonsense.

    A failed read is never "no events": ``ok`` is false and ``error`` says why in one line.
    """

    __slots__ = ("error", "events")

    def __init__(self, events=(), error: str | None = None) -> None:
        self.events: list[Event] = list(events)
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, error: str) -> Reading:
        """A failed read; ``error`` may quote the server, so it is made one bounded line."""
        from healthcheck.sdk.text import LOG_LIMIT

        return cls((), one_line(error, LOG_LIMIT) or "unreadable reply")

    def __repr__(self) -> str:
        return f"Reading(error={self.error!r})" if self.error else f"Reading({self.events!r})"


def sort_key(event: Event):
    """Soonest first; events without a usable time after all timed ones, then by id."""
    return (NEVER if event.when is None else event.when, event.id)


def load_json(body: bytes):
    """``(value, None)`` or ``(None, reason)``: JSON from a bounded body, never an exception."""
    import json

    try:
        return json.loads(body.decode("utf-8")), None
    except UnicodeDecodeError:
        return None, "reply is not UTF-8"
    except RecursionError:
        return None, "reply JSON nests too deeply"
    except ValueError as exc:
        return None, f"reply is not JSON ({str(exc).split(':')[0]})"


# ------------------------------------------------------------- fields under several spellings


def pick(obj: dict, names: tuple[str, ...]):
    """The first of ``names`` present in ``obj`` (``None`` when none is)."""
    for name in names:
        if name in obj:
            return obj[name]
    return None


def text_of(value) -> str | None:
    """A string field, or the ``Name`` of an OpenAPI ``{"Code": n, "Name": "..."}`` object."""
    if isinstance(value, dict):
        value = value.get("Name", value.get("name"))
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None
