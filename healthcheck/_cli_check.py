"""``healthcheck check NAME [options]``: one checker, NPD's protocol on stdout.

The checker's declared options become ``--kebab-case`` flags; each value goes through the
checker's own pipeline (:meth:`healthcheck.Checker.parse_value`) as argparse meets it, so the
first bad value in argv order is the one reported, and the combination through
:meth:`healthcheck.Checker.parse_options`. A usage error goes to stdout, where NPD reads it: one
line of at most 80 bytes (or the JSON object ``--json`` asks for).
"""

from __future__ import annotations

import argparse
import sys

from healthcheck import _host as host
from healthcheck._cli_io import PROG, UsageError, out, parser
from healthcheck._protocol import DEFAULT_MAX_OUTPUT_LENGTH, Status, clamp_message
from healthcheck.sdk.console import non_negative_int, positive_duration, run_checker
from healthcheck.sdk.duration import format_duration
from healthcheck.sdk.text import CONDITION_LIMIT, PROTOCOL_LIMIT, one_line


def _typed(checker, key: str):
    """argparse's ``type`` for one option: the checker's pipeline, with its reason as message."""

    def convert(text: str):
        try:
            return checker.parse_value(key, text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = "parse"  # argparse names it if a plugin's type raises TypeError
    return convert


def add_checker_options(parser: argparse.ArgumentParser, checker) -> None:
    """One ``--kebab-case`` flag per declared option, with its default and help."""
    group = parser.add_argument_group(f"{checker.name} options")
    for opt in checker.options:
        kwargs = {
            "dest": opt.name,
            "type": _typed(checker, opt.name),
            "default": None,
            "help": f"{opt.help} (default: {opt.format_default() or 'none'})",
        }
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.type == "bool":
            kwargs.update(nargs="?", const=True, metavar="BOOL")
        if opt.multiple:
            kwargs["action"] = "extend"  # parse_value gives a multiple option's values as a list
        group.add_argument(opt.flag, *opt.aliases, **kwargs)


def options_from(namespace: argparse.Namespace, checker):
    """The checker's validated options: the flags given, the defaults for the others."""
    given = {
        opt.name: getattr(namespace, opt.name)
        for opt in checker.options
        if getattr(namespace, opt.name, None) is not None
    }
    return checker.parse_options(given=given)


def _check_name(argv: list[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token
    return None


def cmd_check(argv: list[str]) -> int:
    """``healthcheck check NAME [options]``: one check, NPD's protocol on stdout."""
    name = _check_name(argv)
    if name is None:
        if any(t in ("-h", "--help") for t in argv):
            print(f"usage: {PROG} check NAME [options]   (see '{PROG} list' for names)", file=out())
            return 0
        raise UsageError(f"{PROG} check: name a checker (see '{PROG} list')")
    try:
        loaded = host.find(name)
    except host.CheckerNotFound as exc:
        raise UsageError(f"{PROG} check: {exc}") from None
    checker = loaded.checker
    args_parser = parser(f"{PROG} check {name}", checker.description)
    args_parser.add_argument("name", help=argparse.SUPPRESS)
    args_parser.add_argument(
        "--timeout",
        type=positive_duration,
        default=None,
        help=f"deadline for the whole check (default: {format_duration(checker.timeout)})",
    )
    args_parser.add_argument(
        "--max-output-length",
        type=non_negative_int,
        default=DEFAULT_MAX_OUTPUT_LENGTH,
        help=f"cut the message to this many bytes (default: {DEFAULT_MAX_OUTPUT_LENGTH})",
    )
    args_parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    args_parser.add_argument("-v", "--verbose", action="store_true", help="diagnostics on stderr")
    add_checker_options(args_parser, checker)
    args = args_parser.parse_args(argv)
    try:
        options = options_from(args, checker)
    except ValueError as exc:  # the checker's validate(): the combination
        raise UsageError(f"{PROG} check {name}: {exc}") from None
    outcome = run_checker(checker, options, timeout=args.timeout, verbose=args.verbose)
    return _report(name, outcome, args.max_output_length, args.json)


def _report(name: str, outcome, max_output_length: int, as_json: bool) -> int:
    result = outcome.result
    message = clamp_message(result.message, max_output_length)
    if as_json:
        # json only for --json: the plain one-shot path does not import it.
        import json

        print(
            json.dumps(
                {
                    "checker": name,
                    "status": result.status.name,
                    "exit_code": int(result.status),
                    "message": message,
                    "duration_seconds": round(outcome.duration, 6),
                }
            ),
            file=out(),
        )
    elif message:
        print(message, file=out())
    return int(result.status)


def _wants_json(argv: list[str]) -> bool:
    """Whether a ``check`` command line asks for JSON (argparse also takes ``--js``)."""
    for arg in argv:
        if arg == "--":
            return False
        if len(arg) > 3 and "--json".startswith(arg):
            return True
    return False


def report_usage_error(argv: list[str], message: str) -> int:
    """A ``check`` usage error on stdout, where NPD reads it: one line of at most 80 bytes,
    or with ``--json`` the JSON object a result would have, saying what is wrong. The whole
    line (up to 1 KiB) goes to stderr as well, for a person. Returns the exit code, 2."""
    line = one_line(message, PROTOCOL_LIMIT)
    full = one_line(message, CONDITION_LIMIT)
    if full != line:
        print(full, file=sys.stderr)
    if _wants_json(argv):
        # json only for --json: the plain one-shot path does not import it.
        import json

        name = _check_name(argv)
        record = {
            "checker": one_line(name, 100) if name is not None else None,
            "status": Status.UNKNOWN.name,
            "exit_code": int(Status.UNKNOWN),
            "message": line,
            "duration_seconds": 0.0,
            "error": "usage",
        }
        print(json.dumps(record), file=out())
    else:
        print(line, file=out())
    return int(Status.UNKNOWN)
