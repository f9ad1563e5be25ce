"""Command lines as Go's pflag reads them, for the drop-in ``health-checker`` and ``log-counter``.

NPD's binaries parse flags with pflag, and NPD configs are written for it: ``--flag=value`` and
``--flag value`` (the next argument is the value even when it starts with a dash, e.g. a pattern
``-bash: fork failed``), bare booleans, klog's ``-v``/``--v`` shorthand, ``--`` ending the flags,
and other arguments kept aside (neither command reads them). Values are read as pflag reads them
(integers with Go's ``strconv.ParseInt(s, 0, 64)``, booleans with ``strconv.ParseBool``,
durations with ``time.ParseDuration``) and errors carry pflag's and Go's wording, so that the
line NPD shows as the condition message is the one NPD's own binary would print.

Not argparse: argparse reads a dash-led value as a flag, words its errors differently, and
importing and building it costs more than a whole one-shot check's parsing.
"""

from __future__ import annotations

from collections.abc import Mapping

from healthcheck._option import parse_bool
from healthcheck.sdk.console import UsageError, stdout_gone
from healthcheck.sdk.duration import DurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class FlagOption(Protocol):
        """What :func:`parse` needs of a table's Option (a :class:`healthcheck.Option`)."""

        type: object
        multiple: bool

        def parse(self, text: str) -> Any: ...


# klog registers -v with a shorthand, so pflag names it "-v, --v" in its errors.
_V_NAME = "-v, --v"
# klog's flags NPD's binaries bridge into pflag (-v visible, the others hidden); klog's other
# flags (--log_dir, ...) are unknown to them. The ``klog`` argument of :func:`parse`.
KLOG_FLAGS = {"--v": "level", "--vmodule": "vmodule", "--logtostderr": "bool"}


class FlagError(UsageError):
    """A command line pflag would reject; the message is pflag's (or NPD's own words)."""


class HelpRequested(Exception):
    """``-h`` or ``--help`` in a flag's place: pflag prints the usage and exits 0."""


# ------------------------------------------------------------------------------- Go's strconv


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote`` (``%q``): printable characters kept, the rest escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch.isprintable() and (ch == " " or not ch.isspace()):
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_quote_rune(ch: str) -> str:
    """Go's ``strconv.QuoteRune`` (``%q`` of a rune): ``'x'``, ``'\\n'``."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return "'" + go_quote(ch)[1:-1] + "'"


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def _num_error(func: str, text: str, why: str) -> ValueError:
    return ValueError(f"strconv.{func}: parsing {go_quote(text)}: {why}")


def _underscore_ok(s: str) -> bool:
    """Go's ``underscoreOK``: underscores only between digits or after a base prefix."""
    saw = "^"
    i = 0
    if s[:1] in ("-", "+"):
        s = s[1:]
    hexa = False
    if len(s) >= 2 and s[0] == "0" and s[1].lower() in "box":
        i, saw, hexa = 2, "0", s[1].lower() == "x"
    while i < len(s):
        c = s[i]
        if "0" <= c <= "9" or (hexa and "a" <= c.lower() <= "f"):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
        i += 1
    return saw != "_"


def go_parse_int(text: str, base: int = 0, bits: int = 64) -> int:
    """Go's ``strconv.ParseInt(text, base, bits)``: ``010`` is 8 and ``0x1_0`` is 16 in base 0;
    blanks, non-ASCII digits and out-of-range values are errors with Go's wording."""
    if not text:
        raise _num_error("ParseInt", text, "invalid syntax")
    s = text
    neg = s[0] == "-"
    if s[0] in "+-":
        s = s[1:]
    value = _parse_uint(s, base, bits)
    if value is None:
        raise _num_error("ParseInt", text, "invalid syntax")
    cutoff = 1 << (bits - 1)
    if value == -1 or (not neg and value >= cutoff) or (neg and value > cutoff):
        raise _num_error("ParseInt", text, "value out of range")
    return -value if neg else value


def _parse_uint(s: str, base: int, bits: int) -> int | None:
    """Go's ParseUint: the value, ``None`` for a syntax error, ``-1`` when out of range."""
    if not s:
        return None
    base0 = base == 0
    original = s
    if base0:
        base = 10
        if s[0] == "0":
            prefix = s[1:2].lower()
            if len(s) >= 3 and prefix in ("b", "o", "x"):
                base = {"b": 2, "o": 8, "x": 16}[prefix]
                s = s[2:]
            else:
                base, s = 8, s[1:]
    max_value = (1 << bits) - 1
    underscores = False
    n = 0
    for c in s:
        if c == "_" and base0:
            underscores = True
            continue
        if "0" <= c <= "9":
            d = ord(c) - 48
        elif "a" <= c.lower() <= "z" and c.isascii():
            d = ord(c.lower()) - ord("a") + 10
        else:
            return None
        if d >= base:
            return None
        n = n * base + d
        if n > max_value:
            return -1  # Go stops at the first overflow, before any later syntax error
    if underscores and not _underscore_ok(original):
        return None
    return n


def go_parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``, with its error (it takes the words Option's bool takes)."""
    try:
        return parse_bool(text)
    except ValueError:
        raise _num_error("ParseBool", text, "invalid syntax") from None


# ---------------------------------------------------------------------------------- reporting


def report_usage_error(message: str) -> int:
    """Print a usage error as the drop-ins do; return exit code 2.

    stdout gets one line of at most 80 bytes, NPD's default ``max_output_length``: the condition
    message. When that cut something off, the whole line (bounded for a log) goes to stderr,
    which NPD writes to its log.
    """
    import sys

    from healthcheck.sdk.text import LOG_LIMIT, PROTOCOL_LIMIT, one_line

    line = one_line(message, PROTOCOL_LIMIT)
    try:
        print(line, flush=True)
    except BrokenPipeError:
        stdout_gone()  # nobody reads the protocol line: still a usage error, still exit 2
    full = one_line(message, LOG_LIMIT, marker="…")
    if full != line:
        print(full, file=sys.stderr)
    return 2


# ---------------------------------------------------------------------------------- the parse


def parse(
    argv: list[str],
    table: Mapping[str, tuple[str, FlagOption | None]],
    klog: Mapping[str, str],
) -> tuple[dict[str, Any], int]:
    """pflag's parse of ``argv``: the option values set, and klog's ``-v`` verbosity.

    ``table`` maps ``--flag`` to ``(option name, Option)``: the value is parsed with the
    Option (a ``multiple`` one accumulates); an empty name parses and type-checks the value, then
    drops it; an Option of ``None`` keeps the raw text. ``klog`` maps klog's flags (``--v``
    included) to ``"level"``, ``"vmodule"`` or ``"bool"``: accepted and checked as klog checks
    them, without effect but the verbosity. Raises :class:`HelpRequested` at ``-h``/``--help``,
    where pflag stops too.
    """
    values: dict[str, Any] = {}
    verbosity = 0
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue  # an argument, not a flag: pflag keeps it, and nobody reads it
        if not arg.startswith("--"):
            text, i = _shorthand_v(arg, argv, i)
            verbosity = _verbosity(text)
            continue
        flag, eq, text = arg.partition("=")
        if flag == "--" or flag[2] == "-":
            raise FlagError(f"bad flag syntax: {arg}")
        if flag == "--help" and flag not in table:
            raise HelpRequested()
        if flag in klog:
            kind = klog[flag]
            if kind != "bool" and not eq:
                text, i = _next_value(flag, argv, i)
            if kind == "level":
                verbosity = _verbosity(text)
            elif kind == "vmodule":
                _check_vmodule(flag, text)
            elif kind == "bool" and eq:
                try:
                    go_parse_bool(text)
                except ValueError:
                    # A Go flag package bool, bridged into pflag: its error is "parse error".
                    raise _invalid(flag, text, "parse error") from None
            continue
        if flag not in table:
            raise FlagError(f"unknown flag: {flag}")
        name, opt = table[flag]
        if not eq:
            if opt is not None and opt.type == "bool":
                text = "true"
            else:
                text, i = _next_value(flag, argv, i)
        if opt is None:
            values[name] = text
            continue
        value = _convert(flag, opt, text)
        if not name:
            continue
        if opt.multiple:
            values.setdefault(name, []).extend(value)
        else:
            values[name] = value
    return values, verbosity


def _invalid(flag: str, text: str, why: object) -> FlagError:
    return FlagError(f"invalid argument {go_quote(text)} for {go_quote(flag)} flag: {why}")


def _convert(flag: str, opt: FlagOption, text: str) -> Any:
    """``opt.parse(text)`` after pflag's own reading of its type; pflag's error if bad."""
    try:
        if opt.type == "int":
            text_for_opt = str(go_parse_int(text))
        elif opt.type == "bool":
            text_for_opt = "true" if go_parse_bool(text) else "false"
        else:
            text_for_opt = text
        return opt.parse(text_for_opt)
    except DurationError as exc:
        raise _invalid(flag, text, exc.go_message) from None
    except ValueError as exc:
        raise _invalid(flag, text, exc) from None


def _next_value(flag: str, argv: list[str], i: int) -> tuple[str, int]:
    if i >= len(argv):
        raise FlagError(f"flag needs an argument: {flag}")
    return argv[i], i + 1


def _shorthand_v(arg: str, argv: list[str], i: int) -> tuple[str, int]:
    """The value of ``-v``, ``-v2``, ``-v=2`` or ``-v 2``; klog's is the only shorthand.

    pflag reads a group of shorthands one letter at a time: ``-h`` asks for help, any other
    letter but ``v`` is unknown, and ``v`` takes the rest of the group (after an optional ``=``)
    or the next argument as its value.
    """
    letters = arg[1:]
    c = letters[0]
    if c == "h":
        raise HelpRequested()
    if c != "v":
        raise FlagError(f"unknown shorthand flag: {go_quote_rune(c)} in {arg}")
    rest = letters[1:]
    if rest.startswith("="):
        return rest[1:], i
    if rest:
        return rest, i
    if i >= len(argv):
        raise FlagError(f"flag needs an argument: 'v' in {arg}")
    return argv[i], i + 1


def _check_vmodule(flag: str, text: str) -> None:
    """klog's ``--vmodule`` syntax: ``pattern=N`` items, comma-separated, N >= 0."""
    for item in text.split(","):
        if not item:
            continue
        parts = item.split("=")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise _invalid(flag, text, _VMODULE_SYNTAX)
        try:
            level = go_parse_int(parts[1], 10, 32)
        except ValueError:
            raise _invalid(flag, text, _VMODULE_SYNTAX) from None
        if level < 0:
            raise _invalid(flag, text, "negative value for vmodule level")


_VMODULE_SYNTAX = "syntax error: expect comma-separated list of filename=N"


def _verbosity(text: str) -> int:
    """klog's ``Level.Set``: ``strconv.ParseInt(text, 10, 32)``."""
    try:
        return go_parse_int(text, 10, 32)
    except ValueError as exc:
        raise _invalid(_V_NAME, text, exc) from None
