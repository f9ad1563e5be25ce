"""Argument parsing for the ``healthcheck`` command; each subcommand hands off at once.

Every user error ends in one line naming the input and exit code 2, never a traceback. For
``check`` that line goes to stdout, because NPD turns a plugin's stdout into the condition
message; the other subcommands write errors to stderr.
"""

from __future__ import annotations

import argparse
import sys

from healthcheck._protocol import DEFAULT_MAX_OUTPUT_LENGTH, Status
from healthcheck.sdk.text import CONDITION_LIMIT, PROTOCOL_LIMIT, one_line

PROG = "healthcheck"
# Where our own output goes: the real stdout, kept from plugins while one runs (see main()).
_out = None


def out():
    """The stream for the command's own output (never a plugin's)."""
    return _out or sys.stdout


class UsageError(Exception):
    """Bad input from the user: one line, exit 2."""


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter without its ``import shutil``: a one-shot check never prints help,
    yet argparse builds a formatter per option, and shutil costs ~2 ms of a 25 ms budget."""

    def __init__(self, prog: str) -> None:
        import os

        try:
            width = os.get_terminal_size(sys.stdout.fileno()).columns
        except (OSError, ValueError):
            width = 100
        super().__init__(prog, width=max(40, width - 2))


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions carrying one line, not usage dumps."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def print_help(self, file=None) -> None:
        # --help goes to our stdout, not to fd 1 (which is stderr while plugins are loaded).
        super().print_help(file if file is not None else out())

    def error(self, message: str):
        raise UsageError(f"{self.prog}: {one_line(message, CONDITION_LIMIT)}")


def _typed(parse):
    """Wrap an option parser so argparse reports our message, not a generic one."""

    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_checker_options(parser: argparse.ArgumentParser, checker) -> None:
    """One ``--kebab-case`` flag per declared option, with its default and help."""
    group = parser.add_argument_group(f"{checker.name} options")
    for opt in checker.options:
        kwargs = {
            "dest": opt.name,
            "type": _typed(opt.parse),
            "default": None,
            "help": f"{opt.help} (default: {opt.format_default() or 'none'})",
        }
        if opt.metavar:
            kwargs["metavar"] = opt.metavar
        if opt.type == "bool":
            kwargs.update(nargs="?", const=True, metavar="BOOL")
            kwargs["type"] = _typed(opt.parse)
        if opt.multiple:
            kwargs["action"] = "append"
        group.add_argument(opt.flag, *opt.aliases, **kwargs)


def options_from(namespace: argparse.Namespace, checker):
    """The checker's :class:`~healthcheck._declaration.Options`, defaults filled in."""
    options = checker.defaults()
    for opt in checker.options:
        value = getattr(namespace, opt.name, None)
        if value is None:
            continue
        if opt.multiple:
            value = [
                item for group in value for item in (group if isinstance(group, list) else [group])
            ]
        setattr(options, opt.name, value)
    return options


def _non_negative_int(text: str) -> int:
    from healthcheck._declaration import Option

    try:
        value = Option("value", type="int").parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{one_line(text, 100)}" must be >= 0')
    return value


def _positive_duration(text: str) -> float:
    from healthcheck._declaration import parse_wait

    try:
        value = parse_wait(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'duration "{one_line(text, 100)}" must be > 0')
    return value


# ---------------------------------------------------------------------------------------- check


def _check_name(argv: list[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token
    return None


def cmd_check(argv: list[str]) -> int:
    """``healthcheck check NAME [options]``: one check, NPD's protocol on stdout."""
    from healthcheck import _host as host

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
    parser = Parser(prog=f"{PROG} check {name}", description=checker.description)
    parser.add_argument("name", help=argparse.SUPPRESS)
    parser.add_argument(
        "--timeout",
        type=_positive_duration,
        default=None,
        help=f"deadline for the whole check (default: {_fmt(checker.timeout)})",
    )
    parser.add_argument(
        "--max-output-length",
        type=_non_negative_int,
        default=DEFAULT_MAX_OUTPUT_LENGTH,
        help="cut the message to this many bytes (default: 80)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON object instead")
    parser.add_argument("-v", "--verbose", action="store_true", help="diagnostics on stderr")
    add_checker_options(parser, checker)
    args = parser.parse_args(argv)
    options = options_from(args, checker)
    if checker.validate is not None:
        try:
            checker.validate(options)
        except ValueError as exc:
            raise UsageError(f"{PROG} check {name}: {exc}") from None
    from healthcheck._runner import run_check

    outcome = run_check(checker, options, args.timeout, args.verbose)
    return _report(name, outcome, args.max_output_length, args.json)


def _fmt(seconds: float) -> str:
    from healthcheck.sdk.duration import format_duration

    return format_duration(seconds)


def _report(name: str, outcome, max_output_length: int, as_json: bool) -> int:
    from healthcheck._protocol import clamp_message

    result = outcome.result
    message = clamp_message(result.message, max_output_length)
    if as_json:
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


def _check_usage_error(argv: list[str], message: str) -> None:
    """A ``check`` usage error on stdout, where NPD reads it: one line of at most 80 bytes,
    or with ``--json`` the JSON object a result would have, saying what is wrong. The whole
    line (up to 1 KiB) goes to stderr as well, for a person."""
    line = one_line(message, PROTOCOL_LIMIT)
    full = one_line(message, CONDITION_LIMIT)
    if full != line:
        print(full, file=sys.stderr)
    if _wants_json(argv):
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


# ----------------------------------------------------------------------------------------- list


def cmd_list(argv: list[str]) -> int:
    """``healthcheck list [--json]``: every checker, where it comes from, and broken plugins."""
    parser = Parser(prog=f"{PROG} list", description="List installed checkers.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from healthcheck import _host as host

    catalog = host.discover()
    rows = [
        {
            "name": c.name,
            "distribution": c.distribution,
            "plugin": c.plugin,
            "description": c.checker.description,
            "status": "ok",
            "error": None,
        }
        for c in catalog
    ]
    rows += [
        {
            "name": b.checker or b.plugin,
            "distribution": b.distribution,
            "plugin": b.plugin,
            "description": "",
            "status": "broken",
            "error": b.error,
        }
        for b in catalog.broken
    ]
    if args.json:
        import json

        print(json.dumps(rows, indent=2), file=out())
        return 0
    from healthcheck._table import render_table

    table = [
        [
            r["name"],
            r["distribution"],
            r["status"] if r["error"] is None else f"broken: {r['error']}",
            r["description"],
        ]
        for r in rows
    ]
    print(render_table(["CHECKER", "DISTRIBUTION", "STATUS", "DESCRIPTION"], table), file=out())
    return 0


# --------------------------------------------------------------------------------------- status


def cmd_status(argv: list[str]) -> int:
    """``healthcheck status``: every applicable checker once, concurrently, as a table."""
    parser = Parser(
        prog=f"{PROG} status", description="Run every checker that applies to this machine once."
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    args = parser.parse_args(argv)
    from healthcheck._status import run_status

    return run_status(as_json=args.json, color=args.color, out=out())


# ----------------------------------------------------------------------------------- npd-config


def cmd_npd_config(argv: list[str]) -> int:
    """``healthcheck npd-config [NAME ...] --output-dir DIR [--command PATH]``."""
    from healthcheck._npdconfig import DEFAULT_COMMAND

    parser = Parser(
        prog=f"{PROG} npd-config",
        description="Write NPD custom-plugin-monitor JSON for installed checkers.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="checkers (default: all)")
    parser.add_argument("--output-dir", required=True, help="directory to write the files to")
    parser.add_argument(
        "--command",
        default=DEFAULT_COMMAND,
        help=f"path of the healthcheck executable on the node (default: {DEFAULT_COMMAND})",
    )
    args = parser.parse_args(argv)
    from healthcheck._npdconfig import write_configs

    try:
        for path in write_configs(args.names, args.output_dir, args.command):
            print(one_line(path, CONDITION_LIMIT), file=out())  # --output-dir is argv
    except LookupError as exc:
        raise UsageError(f"{PROG} npd-config: {exc.args[0]}") from None
    except OSError as exc:
        raise UsageError(
            f"{PROG} npd-config: cannot write to {args.output_dir}: {exc.strerror or exc}"
        ) from None
    return 0


# ------------------------------------------------------------------------------ host-event-log


def cmd_host_event_log(argv: list[str]) -> int:
    """``healthcheck host-event-log``: append new cloud maintenance events to host_event.log."""
    from healthcheck.sdk.state import DEFAULT_STATE_DIR
    from healthcheck_plugins.maintenance_events.metadata.hostlog import DEFAULT_LOG_PATH

    parser = Parser(
        prog=f"{PROG} host-event-log",
        description="Append new cloud maintenance events to host_event.log in the format of "
        "Alibaba's cloud-assistant plug-in (for a systemd timer).",
    )
    parser.add_argument(
        "--provider",
        choices=("auto", "alibaba", "aws", "azure", "gcp"),
        default="auto",
        help="cloud provider; auto reads DMI (default: auto)",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="metadata server base URL (default: the provider's own address)",
    )
    parser.add_argument("--dmi-root", default="/sys/class/dmi/id", help=argparse.SUPPRESS)
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"token and written-events record (default: {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--log-path",
        default=DEFAULT_LOG_PATH,
        help=f"the log to append to (default: {DEFAULT_LOG_PATH})",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_duration,
        default=5.0,
        help="deadline for reading the metadata server (default: 5s)",
    )
    parser.add_argument(
        "--token-ttl",
        type=_non_negative_int,
        default=21600,
        help="seconds requested for Alibaba/AWS tokens (default: 21600)",
    )
    args = parser.parse_args(argv)
    if args.endpoint is not None and not args.endpoint.startswith("http://"):
        raise UsageError(f'{PROG} host-event-log: --endpoint "{args.endpoint}": use http://')
    if not 1 <= args.token_ttl <= 21600:
        raise UsageError(f"{PROG} host-event-log: --token-ttl must be between 1 and 21600")
    from healthcheck_plugins.maintenance_events.metadata.hostlog import write_events_from

    try:
        written = write_events_from(
            args.provider,
            args.endpoint,
            args.timeout,
            args.state_dir,
            args.token_ttl,
            args.log_path,
            args.dmi_root,
        )
    except (LookupError, OSError) as exc:
        print(f"{PROG} host-event-log: {one_line(exc, CONDITION_LIMIT)}", file=sys.stderr)
        return int(Status.UNKNOWN)
    print(f"{written} new event line(s) in {one_line(args.log_path, CONDITION_LIMIT)}")
    return 0


# ---------------------------------------------------------------------------------------- agent


def cmd_agent(argv: list[str]) -> int:
    """``healthcheck agent --config FILE [--once] [--kubeconfig PATH] [--node-name NAME]``."""
    parser = Parser(
        prog=f"{PROG} agent",
        description="Run checkers on a schedule and report NodeConditions and Events.",
    )
    parser.add_argument("--config", required=True, metavar="FILE", help="agent YAML config")
    parser.add_argument("--once", action="store_true", help="run every check once, report, exit")
    parser.add_argument("--kubeconfig", metavar="PATH", help="default: the in-cluster config")
    parser.add_argument("--node-name", metavar="NAME", help="default: $NODE_NAME, then hostname")
    parser.add_argument(
        "--dry-run", action="store_true", help="print API writes and repairs, do neither"
    )
    parser.add_argument(
        "--output",
        choices=("json", "table"),
        help="--dry-run's form (default: table on a terminal, else JSON lines)",
    )
    parser.add_argument("--check-config", action="store_true", help="validate FILE and exit")
    args = parser.parse_args(argv)
    from healthcheck._agent.main import AgentUsageError, run

    try:
        return run(
            args.config,
            once=args.once,
            kubeconfig=args.kubeconfig,
            node=args.node_name,
            dry_run=args.dry_run,
            check_config=args.check_config,
            output=args.output,
        )
    except AgentUsageError as exc:
        raise UsageError(f"{PROG} agent: {exc}") from None


# ----------------------------------------------------------------------------------------- main

COMMANDS = {
    "check": (cmd_check, "run one checker and print its result (NPD custom-plugin protocol)"),
    "list": (cmd_list, "list installed checkers and broken plugins"),
    "status": (cmd_status, "run every applicable checker once and print a table"),
    "npd-config": (cmd_npd_config, "write NPD custom-plugin-monitor configs"),
    "host-event-log": (cmd_host_event_log, "append cloud maintenance events to host_event.log"),
    "agent": (cmd_agent, "schedule checkers and report NodeConditions, Events and metrics"),
}


def _usage() -> str:
    lines = [f"usage: {PROG} [--version] COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {text}" for name, (_, text) in COMMANDS.items()]
    lines.append(f"\nrun '{PROG} COMMAND --help' for a command's options")
    return "\n".join(lines)


# Commands that import and run plugins: their stdout is claimed so plugins cannot write to it.
_CLAIMS_STDOUT = ("check", "list", "status", "npd-config")


def main(argv=None) -> int:
    """Entry point of the ``healthcheck`` console script."""
    global _out
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv else None
    claim = None
    if command in _CLAIMS_STDOUT:
        from healthcheck._protocol import ProtocolStdout

        claim = ProtocolStdout.claim()
        _out = claim.stream
    try:
        if command in (None, "-h", "--help"):
            print(_usage())
            return 0 if command else 2
        if command == "--version":
            from healthcheck import __version__

            print(f"{PROG} {__version__}")
            return 0
        if command not in COMMANDS:
            raise UsageError(
                f"{PROG}: unknown command {one_line(command, 100)!r} (try '{PROG} --help')"
            )
        return COMMANDS[command][0](argv[1:])
    except UsageError as exc:
        if command == "check":
            _check_usage_error(argv[1:], str(exc))
        else:
            print(one_line(str(exc), CONDITION_LIMIT), file=sys.stderr)
        return int(Status.UNKNOWN)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    finally:
        if claim is not None:
            _out = None
            claim.release()


if __name__ == "__main__":
    sys.exit(main())
