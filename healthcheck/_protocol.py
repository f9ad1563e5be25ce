"""NPD's custom-plugin protocol: three statuses as exit codes and one short line of output.

See shared/spec/npd.md section 2.3: exit 0 is OK, exit 1 is a problem, anything else is unknown.
The message NPD keeps is stdout, whitespace-trimmed and cut to ``max_output_length`` bytes.
"""

from __future__ import annotations

import enum
import os
import sys

from healthcheck.sdk.text import LOG_LIMIT, one_line, short_repr

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
        name = getattr(self.status, "name", self.status)
        return f"Result({name}, {short_repr(self.message, LOG_LIMIT)})"


def clamp_message(text: str, limit: int = DEFAULT_MAX_OUTPUT_LENGTH) -> str:
    """Make ``text`` one protocol line: no control characters, trimmed, at most ``limit`` bytes.

    Control characters (newlines, tabs, escapes, Unicode separators) become spaces so that a
    multi-line error still reads as one line. The cut is on a UTF-8 character boundary, unlike
    NPD's byte slice, so the condition message is always valid UTF-8. This is
    :func:`healthcheck.sdk.text.one_line` with the protocol's default limit.
    """
    return one_line(text, limit)


def describe_error(exc: BaseException, limit: int = LOG_LIMIT) -> str:
    """``TypeName: message`` on one line of at most ``limit`` bytes, for UNKNOWN results,
    broken-plugin reports and log lines. An exception whose ``str()`` itself fails is named
    by its type alone."""
    name = one_line(type(exc).__name__, 100)
    try:
        text = str(exc)
    except Exception:  # a plugin's exception with a broken __str__
        text = ""
    if not isinstance(text, str):
        text = ""
    text = one_line(text, max(0, limit - len(name) - 2))
    return f"{name}: {text}" if text else name


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


class ProtocolStdout:
    """The process's stdout, kept for the protocol alone while plugins run.

    :meth:`claim` moves the real stdout to a private descriptor and points fd 1 at stderr, so
    whatever else writes to stdout (a plugin's ``print()`` at import or in its check,
    ``os.write(1, ...)``, a child process that inherits fd 1) lands on stderr instead of in
    the one line NPD reads or in ``--json`` output. :attr:`stream` writes to the real stdout;
    :meth:`release` flushes it and puts fd 1 back. Costs two ``dup`` calls and one stream
    object, nothing imported.

    When ``sys.stdout`` is not fd 1 (a caller running us in-process with stdout redirected to
    a buffer), that stream is kept for the protocol and ``sys.stdout`` points at
    ``sys.stderr`` until :meth:`release`: plugins' ``print()`` still cannot reach it.
    """

    def __init__(self, stream, saved_fd: int | None, replaced=None) -> None:
        self.stream = stream
        self._saved_fd = saved_fd
        self._replaced = replaced

    @classmethod
    def claim(cls) -> ProtocolStdout:
        """Take stdout for the protocol (a no-op stand-in when there is no stdout to take)."""
        current = sys.stdout
        if current is None:
            return cls(None, None)
        try:
            fd = current.fileno()
        except (AttributeError, OSError, ValueError):
            fd = None
        if fd != 1:
            sys.stdout = sys.stderr
            return cls(current, None, replaced=current)
        try:
            current.flush()
            saved = os.dup(1)
        except (OSError, ValueError):
            return cls(current, None)
        try:
            os.dup2(2, 1)
        except OSError:  # no stderr either: plugin output goes nowhere rather than into ours
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.close(null)
        stream = open(  # noqa: SIM115 - closed by release()
            saved,
            "w",
            encoding=getattr(current, "encoding", None) or "utf-8",
            errors=getattr(current, "errors", None) or "strict",
            closefd=False,
        )
        if getattr(current, "line_buffering", False):
            stream.reconfigure(line_buffering=True)
        return cls(stream, saved)

    def release(self) -> None:
        """Flush what we wrote and give fd 1 back to the real stdout."""
        replaced, self._replaced = self._replaced, None
        if replaced is not None:
            sys.stdout = replaced
        saved, self._saved_fd = self._saved_fd, None
        if saved is None:
            return
        stream, self.stream = self.stream, sys.stdout
        try:
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed pipe: the reader is gone, nothing left to tell it
        finally:
            try:  # noqa: SIM105 - contextlib is not imported on the one-shot path
                stream.close()  # the descriptor stays open (closefd=False) until below
            except (OSError, ValueError):
                pass
            try:  # noqa: SIM105
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            os.dup2(saved, 1)
            os.close(saved)
