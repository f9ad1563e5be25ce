"""RE2 patterns checked and worded as Go's ``regexp`` package: documented in docs/sdk.md.

NPD is written in Go, so the patterns its configs carry (a log-counter's ``--pattern``, a
health-checker's ``--log-pattern``) are Go regular expressions, and a bad one is reported in Go's
words (``error parsing regexp: missing closing ): `a(b```). Go's ``regexp`` and RE2 share their
syntax and semantics (linear time, no backreferences); :func:`compile_re2` compiles with RE2
(google-re2) after checking the few rules only Go has, so that what Go rejects is rejected here
with the same message, and what Go accepts compiles.

google-re2 is imported on the first compilation, not with this module: a one-shot check that has
no pattern to compile never pays for it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["PatternError", "compile_re2", "go_syntax_error", "single_line"]


class PatternError(ValueError):
    """An expression Go's regexp package rejects; the message is Go's (``error parsing regexp``)."""


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
# Escapes that match (or may match) a newline, or quote text :func:`single_line` does not inspect.
_NEWLINE_ESCAPES = frozenset("nsSDWpPxCQAtaf01234567")
# POSIX classes that cannot contain a newline; any other one makes :func:`single_line` say False.
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


def _go_error(code: str, fragment: str) -> str:
    return f"error parsing regexp: {code}: `{fragment}`"


def _re2_error(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "invalid regular expression"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", errors="replace")
    reason = str(reason)
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
    frames: list[list[bool]] = []  # [capturing, seen an alternation in it]
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


def _re2_compile(expr: str | bytes, *, ignore_case: bool = False) -> Any:
    """``re2.compile`` with RE2's default memory budget, or 64 MiB for a pattern that needs it.

    RE2's default (8 MiB) refuses some patterns Go compiles (``\\pL{1000}``); the larger budget
    is only given to those, since it also bounds the DFA cache of every search.
    """
    # Here, not at the top: google-re2 costs a few milliseconds, paid only by a check that has
    # a pattern to compile.
    import re2  # type: ignore[import-untyped, unused-ignore]

    options = re2.Options()
    options.log_errors = False  # RE2 would also print the error to stderr through absl logging
    if ignore_case:
        options.case_sensitive = False
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
    import re2  # type: ignore[import-untyped, unused-ignore]  # (see _re2_compile)

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


def _group(expr: str) -> str:
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


def compile_re2(
    expr: str,
    *,
    anchor: str | None = None,
    prefix: str = "",
    ignore_case: bool = False,
    as_bytes: bool = False,
) -> Any:
    """``expr`` compiled with RE2; :class:`PatternError` with Go's message if Go rejects it.

    With neither ``anchor`` nor ``prefix``, ``expr`` itself is compiled. Otherwise the compiled
    text is ``prefix + (?:expr) + anchor``: ``expr`` as one group (a top-level ``a|b`` is
    anchored as a whole; an unclosed ``\\Q`` cannot quote the wrapper), e.g. ``anchor="\\\\z"``
    for "ends at the end of the text". ``expr`` is always checked alone first, as Go checks it,
    so that text such as a trailing backslash cannot combine with the wrapper into a different,
    valid expression.

    ``ignore_case`` compiles case-insensitively (as ``grep -i``); ``as_bytes`` compiles the UTF-8
    encoding, for searching UTF-8 bytes: RE2 matches the same, and match offsets need no
    conversion back to character positions.

    Returns google-re2's compiled pattern (``search``, ``finditer``, ``fullmatch``, as
    :mod:`re`'s). A pattern RE2 can only compile with more than its default 8 MiB gets 64 MiB.
    """
    import re2  # type: ignore[import-untyped, unused-ignore]  # (see _re2_compile)

    error = go_syntax_error(expr)
    if error is not None:
        raise PatternError(error)
    wrapped = expr if anchor is None and not prefix else prefix + _group(expr) + (anchor or "")
    try:
        return _re2_compile(wrapped.encode() if as_bytes else wrapped, ignore_case=ignore_case)
    except re2.error as exc:
        raise PatternError(_re2_error(exc)) from None


def single_line(expr: str) -> bool:
    """True when a match of ``expr`` can never contain a newline nor depend on text before it.

    Such a pattern can be searched in each line of a text alone, or in many lines joined by
    newlines at once. Conservative: it answers False for anything it does not understand,
    which only costs speed.
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
