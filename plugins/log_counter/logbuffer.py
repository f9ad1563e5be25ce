"""NPD's log-buffer matching (spec 4.3) with RE2 semantics, plus a fast path that agrees with it.

The reference semantics: the last ``BUFFER_LINES`` messages (unused slots are empty strings) are
joined with ``\\n``, oldest first, and the pattern must match a stretch of that text that ends at
its very end. Unlike NPD, the pattern is wrapped as ``(?:pattern)\\z``, so a top-level alternation
``a|b`` is anchored as a whole (NPD appends ``\\z`` textually and ``a`` then matches anywhere in
the buffer, re-counting old lines).

The fast path: when the pattern can neither match a newline nor assert the beginning of the text,
a match ending at the end of the buffer lies within the newest message, so searching that
message alone gives the same answer without building a 1000-line string per message.
"""

from __future__ import annotations

import collections

# PatternError and go_syntax_error are re-exported: log_counter/checker.py and tests import them
# from here.
from healthcheck.sdk.patterns import PatternError, compile_re2, go_syntax_error, single_line

__all__ = [
    "BUFFER_LINES",
    "LogCounter",
    "Matcher",
    "PatternError",
    "compile_pattern",
    "go_syntax_error",
    "reference_match",
    "trim_space",
]

BUFFER_LINES = 1000


def compile_pattern(expr: str):
    """Compile ``expr`` anchored at the end of the text as a whole: ``(?:expr)\\z``.

    :class:`PatternError` (Go's message) if Go's regexp package would reject ``expr``.
    """
    return compile_re2(expr, anchor="\\z")


class Matcher:
    """Whether the newest message of a buffer matches one compiled pattern."""

    __slots__ = ("batch", "fast", "regex")

    def __init__(self, expr: str) -> None:
        self.regex = compile_pattern(expr)
        self.fast = single_line(expr)
        # Many messages joined by newlines can be searched at once with the end-of-text anchor
        # turned into an end-of-line one, unless the pattern has its own end anchors.
        self.batch = None
        if self.fast and "$" not in expr and "\\z" not in expr:
            self.batch = compile_re2(expr, anchor="(?m:$)", as_bytes=True)

    def count_lines(self, text: bytes) -> int:
        """How many lines of UTF-8 ``text`` (messages joined by ``\\n``) match at their end."""
        # Every match ends at a line end; a set counts a line once even if two matches end there.
        # Bytes, because google-re2 turns each str match offset back into a character index by
        # decoding the text before it (measured: 10x slower for 4096 lines with 82 matches).
        return len({match.end() for match in self.batch.finditer(text)})

    def matches(self, newest: str, buffer) -> bool:
        """``buffer`` is the deque of the last messages, ``newest`` the last of them."""
        if self.fast:
            return self.regex.search(newest) is not None
        return self.regex.search("\n".join(buffer)) is not None


class LogCounter:
    """NPD's counting: +1 when the pattern matches, then -1 when the revert pattern does.

    An empty ``revert_pattern`` means none; an empty ``pattern`` matches every message.
    """

    __slots__ = ("buffer", "count", "pattern", "revert")

    def __init__(self, pattern: str, revert_pattern: str = "", lines: int = BUFFER_LINES) -> None:
        self.pattern = Matcher(pattern)
        self.revert = Matcher(revert_pattern) if revert_pattern else None
        needs_buffer = not self.pattern.fast or (self.revert is not None and not self.revert.fast)
        # The fast path never reads the buffer, so it does not keep one.
        self.buffer = collections.deque([""] * lines, maxlen=lines) if needs_buffer else None
        self.count = 0

    def push_messages(self, messages: list[bytes], chunk: int = 4096) -> None:
        """Push journal messages as read (UTF-8 bytes, untrimmed), each trimmed as NPD does.

        The same count as :meth:`push` of ``trim_space(message)`` one by one. When both patterns
        can be searched in batches, the messages are joined a chunk at a time and searched with
        one RE2 call per chunk instead of one per message.
        """
        if self.pattern.batch is None or (self.revert is not None and self.revert.batch is None):
            push = self.push
            for message in messages:
                push(trim_space(message.decode("utf-8", "replace")))
            return
        for first in range(0, len(messages), chunk):
            self._count_batch(_last_lines(messages[first : first + chunk]))

    def _count_batch(self, text: bytes) -> None:
        self.count += self.pattern.count_lines(text)
        if self.revert is not None:
            self.count -= self.revert.count_lines(text)

    def push(self, message: str) -> None:
        """Add one (already trimmed) message and update :attr:`count`."""
        if self.buffer is not None:
            self.buffer.append(message)
        if self.pattern.matches(message, self.buffer):
            self.count += 1
        if self.revert is not None and self.revert.matches(message, self.buffer):
            self.count -= 1


def reference_match(regex, messages, lines: int = BUFFER_LINES) -> bool:
    """NPD's buffer semantics, literally: join the last ``lines`` slots and search."""
    slots = ([""] * lines + list(messages))[-lines:]
    return regex.search("\n".join(slots)) is not None


# Go's strings.TrimSpace trims Unicode White_Space; Python's str.strip() also trims \x1c-\x1f.
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)


def trim_space(text: str) -> str:
    """``strings.TrimSpace``: NPD trims each journal message before buffering it."""
    # str.strip() with no argument is fast and trims a superset of Go's set; most messages have
    # nothing to trim, and only those that do pay for the exact (slower) set.
    if len(text.strip()) == len(text):
        return text
    return text.strip(GO_SPACE)


def _last_lines(messages: list[bytes]) -> bytes:
    """The trimmed messages' last lines joined by newlines: all a batch search needs to see.

    Only the last line of a multi-line message can hold a match that ends the message. bytes.strip
    trims exactly Go's ASCII white space; only a message that is not ASCII can have more of Go's
    (Unicode) white space at its ends, and only those take the exact, slower way.
    """
    lines = [message.strip() for message in messages]
    text = b"\n".join(lines)
    if text.isascii() and text.count(b"\n") == len(lines) - 1:
        return text  # the common case: one ASCII line per message
    return b"\n".join(
        line.rpartition(b"\n")[2]
        if line.isascii()
        else trim_space(line.decode("utf-8", "replace")).rpartition("\n")[2].encode()
        for line in lines
    )
