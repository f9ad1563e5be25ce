"""The ``log-counter`` console script: a drop-in for NPD's binary of that name (spec 4.1).

It takes NPD's flags in Go pflag style (``--flag=value`` and ``--flag value``), accepts and
ignores klog's logging flags, runs the ``log-counter`` checker and speaks NPD's protocol: the
``Found ...`` line and exit 1 at the threshold, silence and exit 0 below it, one line and exit 2
for any error. Errors go to stdout, as NPD's binary prints them, because NPD's custom plugin
monitor turns stdout into the condition message.
"""

from __future__ import annotations

import sys

PROG = "log-counter"
CHECKER = "log-counter"
# klog's flags, registered on NPD's command line by klog.InitFlags; accepted, without effect.
KLOG_VALUE_FLAGS = (
    "--vmodule",
    "--log_dir",
    "--log_file",
    "--log_file_max_size",
    "--stderrthreshold",
    "--log_backtrace_at",
)
KLOG_BOOL_FLAGS = (
    "--logtostderr",
    "--alsologtostderr",
    "--add_dir_header",
    "--skip_headers",
    "--skip_log_headers",
    "--one_output",
)


def _parser(checker):
    import argparse

    from healthcheck.cli import Parser

    parser = Parser(
        prog=PROG,
        description="Count journald lines matching a pattern (NPD log-counter compatible).",
        allow_abbrev=False,
    )
    for opt in checker.options:
        parser.add_argument(
            opt.flag,
            dest=opt.name,
            default=None,
            metavar=opt.name.upper(),
            help=f"{opt.help} (default: {opt.format_default() or 'none'})",
        )
    parser.add_argument("-v", "--v", dest="klog_v", default=None, help="klog verbosity")
    for flag in KLOG_VALUE_FLAGS:
        parser.add_argument(flag, default=None, help=argparse.SUPPRESS)
    for flag in KLOG_BOOL_FLAGS:
        parser.add_argument(flag, nargs="?", const="true", default=None, help=argparse.SUPPRESS)
    return parser


def _options(args, checker):
    options = checker.defaults()
    for opt in checker.options:
        text = getattr(args, opt.name)
        if text is None:
            continue
        try:
            value = opt.parse(text)
        except ValueError as exc:
            raise ValueError(f'invalid argument "{text}" for "{opt.flag}" flag: {exc}') from None
        setattr(options, opt.name, value)
    return options


def main(argv=None) -> int:
    """Entry point of the ``log-counter`` console script."""
    from healthcheck import host
    from healthcheck.cli import UsageError
    from healthcheck.protocol import Status

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        try:
            checker = host.find(CHECKER).checker
        except host.CheckerNotFound as exc:
            raise UsageError(f"{PROG}: {exc}") from None
        args = _parser(checker).parse_args(argv)
        try:
            options = _options(args, checker)
            if args.klog_v is not None:
                int(args.klog_v, 10)
            checker.validate(options)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        print(exc)
        return int(Status.UNKNOWN)
    from healthcheck.runner import run_check

    outcome = run_check(checker, options, verbose=bool(args.klog_v and args.klog_v != "0"))
    if outcome.result.message:
        print(outcome.result.message)
    return int(outcome.result.status)


if __name__ == "__main__":
    sys.exit(main())
