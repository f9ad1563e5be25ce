"""The ``healthcheck`` command: dispatch to a subcommand, which hands off at once.

Every user error ends in one line naming the input and exit code 2, never a traceback
(:func:`healthcheck.sdk.console.console_main`). For ``check`` that line goes to stdout, because
NPD turns a plugin's stdout into the condition message; the other subcommands write errors to
stderr. The built-in subcommands live in :mod:`healthcheck._cli_check` and
:mod:`healthcheck._cli_commands`; plugins add theirs through the ``healthcheck_commands`` hook
(:mod:`healthcheck._plugin_commands`), consulted only for a command not built in.
"""

from __future__ import annotations

import sys

from healthcheck import __version__, _cli_io
from healthcheck._cli_io import PROG, UsageError, out
from healthcheck._protocol import ProtocolStdout
from healthcheck.sdk.console import USAGE_EXIT, console_main
from healthcheck.sdk.text import CONDITION_LIMIT, one_line

# name: (module, function, help). Each subcommand's module is imported only when it runs.
COMMANDS = {
    "check": (
        "_cli_check",
        "cmd_check",
        "run one checker and print its result (NPD custom-plugin protocol)",
    ),
    "list": ("_cli_commands", "cmd_list", "list installed checkers and broken plugins"),
    "status": (
        "_cli_commands",
        "cmd_status",
        "run every applicable checker once and print a table",
    ),
    "npd-config": ("_cli_commands", "cmd_npd_config", "write NPD custom-plugin-monitor configs"),
    "agent": (
        "_cli_commands",
        "cmd_agent",
        "schedule checkers and report NodeConditions, Events and metrics",
    ),
}
# Commands that import and run plugins: their stdout is claimed so plugins cannot write to it.
_CLAIMS_STDOUT = ("check", "list", "status", "npd-config", None, "-h", "--help")


def _plugin_commands():
    # pluggy and every plugin, only for a command that is not built in (or for --help).
    from healthcheck._plugin_commands import discover_commands

    return discover_commands(reserved=COMMANDS)


def _usage() -> str:
    catalog = _plugin_commands()
    lines = [f"usage: {PROG} [--version] COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<14} {text}" for name, (_, _, text) in COMMANDS.items()]
    for name in sorted(catalog.commands):
        loaded = catalog.commands[name]
        help_text = one_line(loaded.command.help, 200)
        if not loaded.builtin:
            help_text += f" (from {one_line(loaded.distribution, 100)})"
        lines.append(f"  {name:<14} {help_text}")
    if catalog.broken:
        lines += ["", "plugin commands left out:"]
        for broken in catalog.broken:
            what = broken.checker or f"(plugin {broken.plugin} of {broken.distribution})"
            lines.append(f"  {one_line(what, 100)}: {one_line(broken.error, 200)}")
    lines.append(f"\nrun '{PROG} COMMAND --help' for a command's options")
    return "\n".join(lines)


def _run_plugin_command(command: str, argv: list[str]) -> int:
    from healthcheck._plugin_commands import run_command  # loaded by _plugin_commands() already

    catalog = _plugin_commands()
    loaded = catalog.commands.get(command)
    if loaded is not None:
        return run_command(PROG, loaded, argv)
    for broken in catalog.broken:
        if broken.checker == command:
            raise UsageError(
                f"{PROG}: command {one_line(command, 100)!r} is broken "
                f"({broken.distribution}): {broken.error}"
            )
    raise UsageError(f"{PROG}: unknown command {one_line(command, 100)!r} (try '{PROG} --help')")


def _dispatch(argv: list[str]) -> int:
    command = argv[0] if argv else None
    claim = None
    if command in _CLAIMS_STDOUT:
        claim = ProtocolStdout.claim()
        _cli_io.set_out(claim.stream)
    try:
        if command in (None, "-h", "--help"):
            print(_usage(), file=out())
            return 0 if command else 2
        if command == "--version":
            print(f"{PROG} {__version__}", file=out())
            return 0
        if command in COMMANDS:
            module_name, function, _ = COMMANDS[command]
            # The subcommand's module alone: `check` never loads what list or the agent use
            # (__import__, not importlib.import_module: importlib's package costs ~0.3 ms).
            module = __import__(f"healthcheck.{module_name}", fromlist=[function])
            return getattr(module, function)(argv[1:])
        return _run_plugin_command(command, argv[1:])
    finally:
        if claim is not None:
            _cli_io.set_out(None)
            claim.release()


def main(argv=None) -> int:
    """Entry point of the ``healthcheck`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def usage_error(message: str) -> int:
        if argv and argv[0] == "check":
            from healthcheck._cli_check import report_usage_error  # loaded by `check` already

            return report_usage_error(argv[1:], message)
        print(one_line(message, CONDITION_LIMIT), file=sys.stderr)
        return USAGE_EXIT

    return console_main(_dispatch, argv, prog=PROG, on_usage_error=usage_error)


__all__ = ["COMMANDS", "PROG", "UsageError", "main", "out"]

if __name__ == "__main__":
    sys.exit(main())
