"""NPD's custom-plugin protocol: three statuses as exit codes and one short line of output.

See shared/spec/npd.md section 2.3: exit 0 is OK, exit 1 is a problem, anything else is unknown.
The message NPD keeps is stdout, whitespace-trimmed and cut to ``max_output_length`` bytes.
"""

from __future__ import annotations

import enum

from healthcheck.text import one_line

DEFAULT_MAX_OUTPUT_LENGTH = 80


class Status(enum.IntEnum):
    """The outcome of one check; the value is the process exit code NPD expects."""

    OK = 0
    PROBLEM = 1
    UNKNOWN = 2


class Result:
    """A status and one short human-readable message.

    The message is kept as given; :func:`clamp_message` makes it protocol-safe when printed.
    ``data`` (optional, keyword-only) carries machine-readable facts for the agent, never
    printed and never parsed back out of the message; the one key the agent reads today is
    ``not_before`` (epoch seconds, UTC: when a scheduled disruption starts). Equality ignores it.
    """

    __slots__ = ("data", "message", "status")

    def __init__(self, status: Status, message: str = "", *, data: dict | None = None) -> None:
        self.status = Status(status)
        self.message = message
        self.data = data

    @classmethod
    def ok(cls, message: str = "") -> Result:
        return cls(Status.OK, message)

    @classmethod
    def problem(cls, message: str, *, data: dict | None = None) -> Result:
        return cls(Status.PROBLEM, message, data=data)

    @classmethod
    def unknown(cls, message: str) -> Result:
        return cls(Status.UNKNOWN, message)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Result):
            return NotImplemented
        return self.status == other.status and self.message == other.message

    def __hash__(self) -> int:
        return hash((self.status, self.message))

    def __repr__(self) -> str:
        return f"Result({self.status.name}, {self.message!r})"


def clamp_message(text: str, limit: int = DEFAULT_MAX_OUTPUT_LENGTH) -> str:
    """Make ``text`` one protocol line: no control characters, trimmed, at most ``limit`` bytes.

    Control characters (newlines, tabs, escapes, Unicode separators) become spaces so that a
    multi-line error still reads as one line. The cut is on a UTF-8 character boundary, unlike
    NPD's byte slice, so the condition message is always valid UTF-8. This is
    :func:`healthcheck.text.one_line` with the protocol's default limit.
    """
    return one_line(text, limit)


def describe_error(exc: BaseException) -> str:
    """``TypeName: message`` on one line, for UNKNOWN results and broken-plugin reports."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def worst(statuses) -> Status:
    """The status that should win when several checks are summarised.

    A definite problem outranks not knowing; not knowing outranks OK.
    """
    rank = {Status.OK: 0, Status.UNKNOWN: 1, Status.PROBLEM: 2}
    result = Status.OK
    for status in statuses:
        if rank[status] > rank[result]:
            result = status
    return result
