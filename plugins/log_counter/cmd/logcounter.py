"""The ``log-counter`` console script: a drop-in for NPD's binary of that name (spec 4.1).

It takes NPD's flags as Go's pflag reads them (:mod:`healthcheck.sdk.pflag`, shared with
``health-checker``), accepts and ignores klog's logging flags, runs the ``log-counter`` checker
and speaks NPD's protocol: the ``Found ...`` line and exit 1 at the threshold, silence and exit 0
below it, one line and exit 2 for any error. Errors go to stdout, as NPD's binary prints them,
because NPD's custom plugin monitor turns stdout into the condition message.
"""

from __future__ import annotations

import sys

from healthcheck import OptionError
from healthcheck.sdk.console import console_main, find_checker, run_checker
from healthcheck.sdk.journal import npd_log_path_error
from healthcheck.sdk.pflag import KLOG_FLAGS, FlagError, HelpRequested, report_usage_error
from healthcheck.sdk.pflag import parse as parse_flags
from healthcheck.sdk.text import RESULT_LIMIT, one_line
from healthcheck_plugins.log_counter.checker import WATCH_ERROR

PROG = "log-counter"
CHECKER = "log-counter"
PFLAG_TYPES = {"str": "string", "int": "int", "bool": "", "duration": "duration"}


def usage(checker) -> str:
    """pflag-style help: one line per flag with its type, help and default."""
    rows = [
        (f"--{opt.flag[2:]} {PFLAG_TYPES.get(opt.type, 'value')}", opt) for opt in checker.options
    ]
    rows.append(("-v, --v int", None))
    width = max(len(left) for left, _ in rows) + 3
    lines = [f"usage: {PROG} [flags]   (NPD log-counter compatible)"]
    for left, opt in rows:
        if opt is None:
            text = "log verbosity; > 0 writes diagnostics to stderr"
        else:
            default = opt.format_default()
            if default and opt.type == "str":
                default = f'"{default}"'  # pflag quotes string defaults only
            text = opt.help + (f" (default {default})" if default else "")
        lines.append(f"  {left:<{width}}{text}")
    return "\n".join(lines)


def prepare(argv: list[str]):
    """Parse and validate ``argv`` as NPD does: ``(checker, options, verbosity)``.

    Raises :class:`FlagError` (pflag's or NPD's words) or :class:`HelpRequested`.
    """
    try:
        checker = find_checker(CHECKER)
    except LookupError as exc:
        raise FlagError(f"{PROG}: {exc}") from None
    table = {opt.flag: (opt.name, opt) for opt in checker.options}
    values, verbosity = parse_flags(argv, table, KLOG_FLAGS)
    # NPD's order: patterns, durations, then the log path, then the source.
    path_error = npd_log_path_error(checker.parse_options(given=values, validate=False).log_path)
    try:
        options = checker.parse_options(given=values)
    except OptionError as exc:
        if path_error is not None and not values.get("journald_source"):
            try:  # would it pass with a source? then the log path is the first error
                checker.parse_options(given={**values, "journald_source": "x"})
            except OptionError:
                raise FlagError(exc.reason) from None
            raise FlagError(WATCH_ERROR + path_error) from None
        raise FlagError(exc.reason) from None
    if path_error is not None:
        raise FlagError(WATCH_ERROR + path_error)
    return checker, options, verbosity


def run(argv: list[str]) -> int:
    """Parse, validate and count once; return the exit code."""
    try:
        checker, options, verbosity = prepare(argv)
    except HelpRequested:
        print(usage(find_checker(CHECKER)), file=sys.stderr)  # pflag's usage: stderr
        return 0
    outcome = run_checker(checker, options, verbose=verbosity > 0)
    message = one_line(outcome.result.message, RESULT_LIMIT)
    if message:
        print(message)
    return int(outcome.result.status)


def main(argv=None) -> int:
    """Entry point of the ``log-counter`` console script (usage errors as NPD prints them)."""
    return console_main(run, argv, prog=PROG, on_usage_error=report_usage_error)


if __name__ == "__main__":
    sys.exit(main())
