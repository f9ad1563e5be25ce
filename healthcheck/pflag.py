"""Command lines as Go's pflag reads them, for the drop-in ``health-checker`` and ``log-counter``.

NPD's binaries parse flags with pflag, and NPD configs are written for it: ``--flag=value`` and
``--flag value`` (the next argument is the value even when it starts with a dash, e.g. a pattern
``-bash: fork failed``), bare booleans, klog's ``-v``/``--v`` shorthand, ``--`` ending the flags,
and other arguments kept aside (neither command reads them). Errors carry pflag's wording.

Not argparse: argparse reads a dash-led value as a flag, words its errors differently, and
importing and building it costs more than a whole one-shot check's parsing.
"""

from __future__ import annotations

from collections.abc import Mapping


class FlagError(Exception):
    """A command line pflag would reject; the message is pflag's."""


def parse(
    argv: list[str], table: Mapping[str, tuple[str, object]], klog: Mapping[str, str]
) -> tuple[dict, int]:
    """pflag's parse of ``argv``: the option values set, and klog's ``-v`` verbosity.

    ``table`` maps ``--flag`` to ``(option name, Option)``: the value is parsed with the
    Option (a ``multiple`` one accumulates); an empty name parses and type-checks the value, then
    drops it; an Option of ``None`` keeps the raw text. ``klog`` maps klog's flags (``--v``
    included) to ``"int"``, ``"str"`` or ``"bool"``: accepted and checked, without effect but
    the verbosity.
    """
    values: dict = {}
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
            verbosity = _verbosity(text, "-v")
            continue
        flag, eq, text = arg.partition("=")
        if flag in klog:
            kind = klog[flag]
            if kind != "bool" and not eq:
                text, i = _next_value(flag, argv, i)
            if kind == "int":
                verbosity = _verbosity(text, flag)
            elif kind == "bool" and eq:
                _check_bool(flag, text)
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


def _convert(flag: str, opt, text: str):
    """``opt.parse(text)``, or pflag's ``invalid argument`` error naming the flag."""
    try:
        return opt.parse(text)
    except ValueError as exc:
        raise FlagError(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def last_value(argv: list[str], flag: str, default: str) -> str:
    """The value ``flag`` ends up with (the last one wins), read before the full parse."""
    value = default
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        elif arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
            i += 1
        i += 1
    return value


def wants_help(argv: list[str]) -> bool:
    """True when ``-h`` or ``--help`` comes before ``--``."""
    for arg in argv:
        if arg == "--":
            return False
        if arg in ("-h", "--help"):
            return True
    return False


def _next_value(flag: str, argv: list[str], i: int) -> tuple[str, int]:
    if i >= len(argv):
        raise FlagError(f"flag needs an argument: {flag}")
    return argv[i], i + 1


def _shorthand_v(arg: str, argv: list[str], i: int) -> tuple[str, int]:
    """The value of ``-v``, ``-v2``, ``-v=2`` or ``-v 2``; klog's is the only shorthand."""
    name, eq, text = arg[1:].partition("=")
    if not name.startswith("v"):
        raise FlagError(f"unknown shorthand flag: {name[:1]!r} in {arg}")
    if eq:
        if name != "v":
            raise FlagError(f"unknown shorthand flag: 'v' in {arg}")
        return text, i
    if name[1:]:
        return name[1:], i
    if i >= len(argv):
        raise FlagError("flag needs an argument: 'v' in -v")
    return argv[i], i + 1


def _check_bool(flag: str, text: str) -> None:
    from healthcheck.declaration import parse_bool

    try:
        parse_bool(text)
    except ValueError as exc:
        raise FlagError(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def _verbosity(text: str, flag: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise FlagError(
            f'invalid argument "{text}" for "{flag}" flag: strconv.ParseInt: parsing '
            f'"{text}": invalid syntax'
        ) from None
