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

BUFFER_LINES = 1000

# Escapes that match (or may match) a newline, or quote text we do not inspect.
_NEWLINE_ESCAPES = frozenset("nsSDWpPxCQAtaf01234567")
# POSIX classes that cannot contain a newline; any other one sends the pattern to the buffer.
_SAFE_POSIX = (
    "alnum",
    "alpha",
    "blank",
    "digit",
    "graph",
    "lower",
    "print",
    "punct",
    "upper",
    "word",
    "xdigit",
)


class PatternError(ValueError):
    """A pattern Go's regexp package rejects; the message is Go's (``error parsing regexp:``)."""


# RE2's error codes in Go's regexp/syntax words (the two parsers share their grammar and order).
_RE2_TO_GO = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid named capture group": "invalid named capture",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid escape sequence": "invalid escape sequence",
    "invalid character class range": "invalid character class range",
    "invalid character class": "invalid character class",
    "invalid UTF-8": "invalid UTF-8",
    "pattern too large - compile failed": "expression too large",
}
# Go refuses a parse tree this high (regexp/syntax maxHeight, as measured against NPD's binary).
_MAX_HEIGHT = 1000
# RE2's default budget (8 MiB) refuses patterns Go compiles, e.g. \pL{1000}.
_MAX_MEM = 64 << 20


def _go_error(code: str, fragment: str) -> str:
    return f"error parsing regexp: {code}: `{fragment}`"


def _re2_error(exc) -> str:
    reason = exc.args[0] if exc.args else "invalid regular expression"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", errors="replace")
    for code, go_code in _RE2_TO_GO.items():
        if reason == code or reason.startswith(code + ": "):
            return _go_error(go_code, reason[len(code) + 2 :])
    return f"error parsing regexp: {reason}"


def _go_only_error(expr: str) -> tuple[int, str] | None:
    """The first error Go's parser finds that RE2's does not: ``\\C``, bytes that are not UTF-8,
    a capture name that is not ASCII word characters, nesting deeper than Go allows. Returns
    its position and Go's message."""
    i, n = 0, len(expr)
    in_class, class_start = False, 0
    frames: list[list] = []  # [capturing, seen an alternation in it]
    top_alt = False
    while i < n:
        c = expr[i]
        if 0xD800 <= ord(c) <= 0xDFFF:  # a byte that was not UTF-8 (surrogateescape)
            return i, _go_error("invalid UTF-8", "\ufffd")
        if c == "\\":
            nxt = expr[i + 1 : i + 2]
            if nxt == "C":
                return i, _go_error("invalid escape sequence", "\\C")
            if nxt == "Q" and not in_class:
                end = expr.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if c == "]" and expr[class_start:i] not in ("", "^"):
                in_class = False
            elif c == "[" and expr.startswith("[:", i):
                end = expr.find(":]", i + 2)
                if end >= 0:
                    i = end + 2
                    continue
            i += 1
            continue
        if c == "[":
            in_class, class_start = True, i + 1
        elif c == "(":
            capturing = not expr.startswith("(?", i)
            for opener in ("(?P<", "(?<"):
                if expr.startswith(opener, i) and not expr.startswith("(?<=", i):
                    end = expr.find(">", i)
                    name = expr[i + len(opener) : end] if end > 0 else ""
                    if end > 0 and not all(
                        ch.isascii() and (ch.isalnum() or ch == "_") for ch in name
                    ):
                        return i, _go_error("invalid named capture", expr[i : end + 1])
                    capturing = True
                    break
            if expr.startswith("(?", i) and not capturing:
                end = expr.find(")", i)
                colon = expr.find(":", i)
                if end >= 0 and (colon < 0 or end < colon):
                    i = end + 1  # a flag group such as (?i): no node of its own
                    continue
            frames.append([capturing, False])
        elif c == ")" and frames:
            frames.pop()
        elif c == "|":
            if frames:
                frames[-1][1] = True
            else:
                top_alt = True
        height = 1 + top_alt + sum(f[0] + (f[0] and f[1]) for f in frames)
        if height >= _MAX_HEIGHT:
            return i, _go_error("expression nests too deeply", expr)
        i += 1
    return None


def _re2_compile(expr):
    """``re2.compile`` with RE2's default memory budget, or 64 MiB for a pattern that needs it.

    RE2's default (8 MiB) refuses some patterns Go compiles (``\\pL{1000}``); the larger budget
    is only given to those, since it also bounds the DFA cache of every search.
    """
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would also print the error to stderr through absl logging
    try:
        return re2.compile(expr, options=options)
    except re2.error as exc:
        if b"too large" not in (exc.args[0] if exc.args else b""):
            raise
    options.max_mem = _MAX_MEM
    return re2.compile(expr, options=options)


def go_syntax_error(expr: str) -> str | None:
    """What Go's ``regexp.Compile`` says about ``expr`` (``error parsing regexp: ...``), or None
    when Go accepts it. RE2 checks the syntax both share; the few rules only Go has are checked
    here, and the first error in the text wins, as in Go's left-to-right parser."""
    import re2

    go_only = _go_only_error(expr)
    if go_only is not None:
        position, message = go_only
        try:
            _re2_compile(expr[:position])
        except re2.error as exc:
            earlier = _re2_error(exc)
            if "missing closing" not in earlier:  # not an error yet where Go stopped
                return earlier
        return message
    try:
        _re2_compile(expr)
    except re2.error as exc:
        return _re2_error(exc)
    return None


def group(expr: str) -> str:
    """``(?:expr)``, a group that can be followed by more pattern text.

    ``\\Q`` without its ``\\E`` quotes to the end of the text (Go and RE2 agree), so it would
    also quote the wrapper's ``)``: such a quote is closed inside the group, which changes
    nothing it matches (Go's check accepts ``\\Q`` only outside a character class).
    """
    i, n = 0, len(expr)
    while i < n:
        if expr[i] == "\\":
            if expr.startswith("Q", i + 1):
                end = expr.find("\\E", i + 2)
                if end < 0:
                    return f"(?:{expr}\\E)"
                i = end + 2
                continue
            i += 2
            continue
        i += 1
    return f"(?:{expr})"


def compile_pattern(expr: str):
    """Compile ``expr`` anchored at the end of the text as a whole: ``(?:expr)\\z``.

    The expression is first checked alone, as Go's regexp package checks it, so that text such
    as a trailing backslash cannot combine with the wrapper into a different, valid expression.
    """
    return compile_pattern_with_anchor(expr, "\\z")


def compile_pattern_with_anchor(expr: str, anchor: str, *, as_bytes: bool = False):
    """Compile ``(?:expr)`` followed by ``anchor``; :class:`PatternError` if Go would reject it.

    ``as_bytes`` compiles the UTF-8 encoding, for searching UTF-8 bytes: RE2 matches the same,
    and match offsets need no conversion back to character positions.
    """
    import re2

    error = go_syntax_error(expr)
    if error is not None:
        raise PatternError(error)
    wrapped = group(expr) + anchor
    try:
        return _re2_compile(wrapped.encode() if as_bytes else wrapped)
    except re2.error as exc:
        raise PatternError(_re2_error(exc)) from None


def single_line(expr: str) -> bool:
    """True when a match of ``expr`` can never contain a newline nor depend on text before it.

    Conservative: it answers False for anything it does not understand, which only costs speed.
    """
    if any(ord(c) < 0x20 for c in expr) or "^" in expr:
        return False
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c == "\\":
            if i + 1 >= n or expr[i + 1] in _NEWLINE_ESCAPES:
                return False
            i += 2
            continue
        if c == "(" and expr.startswith("(?", i):
            end = i + 2
            while end < n and expr[end] not in ":)":
                end += 1
            flags = expr[i + 2 : end]
            if "s" in flags.split("-")[0] or "P" in flags or "<" in flags:
                return False
        if c == "[" and expr.startswith("[:", i + 1):
            end = expr.find(":]", i + 2)
            if end < 0 or expr[i + 2 : end] not in _SAFE_POSIX:
                return False
        i += 1
    return True


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
            self.batch = compile_pattern_with_anchor(expr, "(?m:$)", as_bytes=True)

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
