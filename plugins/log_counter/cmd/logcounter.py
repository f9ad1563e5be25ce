"""The ``log-counter`` console script: a drop-in for NPD's binary of that name (spec 4.1).

It takes NPD's flags as Go's pflag reads them (:mod:`healthcheck.sdk.pflag`, shared with
``health-checker``), accepts and ignores klog's logging flags, runs the ``log-counter`` checker
and speaks NPD's protocol: the ``Found ...`` line and exit 1 at the threshold, silence and exit 0
below it, one line and exit 2 for any error. Errors go to stdout, as NPD's binary prints them,
because NPD's custom plugin monitor turns stdout into the condition message.
"""

from __future__ import annotations

import sys

from healthcheck.sdk.pflag import FlagError, HelpRequested, report_usage_error, stdout_gone
from healthcheck.sdk.pflag import parse as parse_flags

PROG = "log-counter"
CHECKER = "log-counter"
# klog's flags NPD's log-counter bridges into pflag (-v visible, the others hidden); klog's
# other flags (--log_dir, ...) are unknown to it, as here.
KLOG_FLAGS = {"--v": "level", "--vmodule": "vmodule", "--logtostderr": "bool"}
# NPD reads at most 4 KiB of a plugin's stdout; a result line is cut there, one line.
RESULT_LIMIT = 4096
WATCH_ERROR = "error watching journald: "  # how NPD's log-counter prefixes journal errors
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
    from healthcheck import _host as host

    try:
        checker = host.find(CHECKER).checker
    except host.CheckerNotFound as exc:
        raise FlagError(f"{PROG}: {exc}") from None
    table = {opt.flag: (opt.name, opt) for opt in checker.options}
    values, verbosity = parse_flags(argv, table, KLOG_FLAGS)
    options = checker.defaults()
    for name, value in values.items():
        setattr(options, name, value)
    from healthcheck.sdk.journal import npd_log_path_error

    # NPD's order: patterns, durations, then the log path, then the source.
    path_error = npd_log_path_error(options.log_path)
    try:
        checker.validate(options)
    except ValueError as exc:
        if path_error is not None and not options.journald_source:
            try:
                checker.validate(_with_source(options))
            except ValueError:
                raise FlagError(str(exc)) from None
            raise FlagError(WATCH_ERROR + path_error) from None
        raise FlagError(str(exc)) from None
    if path_error is not None:
        raise FlagError(WATCH_ERROR + path_error)
    return checker, options, verbosity


def _with_source(options):
    """A copy of ``options`` with a source, to tell a missing source from earlier errors."""
    import copy

    probe = copy.copy(options)
    probe.journald_source = "x"
    return probe


def run(argv: list[str]) -> int:
    """Parse, validate and count once; return the exit code."""
    try:
        checker, options, verbosity = prepare(argv)
    except HelpRequested:
        from healthcheck import _host as host

        print(usage(host.find(CHECKER).checker), file=sys.stderr)  # pflag's usage: stderr
        return 0
    from healthcheck._runner import run_check
    from healthcheck.sdk.text import one_line

    outcome = run_check(checker, options, verbose=verbosity > 0)
    message = one_line(outcome.result.message, RESULT_LIMIT)
    if message:
        print(message)
    return int(outcome.result.status)


def main(argv=None) -> int:
    """Entry point of the ``log-counter`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code = run(argv)
    except FlagError as exc:
        return report_usage_error(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        stdout_gone()
        return 0
    try:
        sys.stdout.flush()  # here, not at exit: the code stays the result's if nobody reads
    except BrokenPipeError:
        stdout_gone()
    return code


if __name__ == "__main__":
    sys.exit(main())
