"""Subcommands that plugins contribute through the ``healthcheck_commands`` hook.

Consulted only when ``healthcheck`` is given a command it does not know (and for ``--help``):
the built-in subcommands, ``check`` above all, never import pluggy or any other plugin for it.
A plugin's command cannot take a built-in's name, and whatever a plugin does wrong (its hook
raises, returns something else than commands, its command raises or returns no exit code) ends
in one line and exit code 2, never a traceback.
"""

from __future__ import annotations

import re
import sys

from healthcheck._command import Command
from healthcheck._host import _PLUGIN_FAULTS, BrokenPlugin, _register_plugins
from healthcheck._protocol import Status, describe_error
from healthcheck.sdk.console import UsageError
from healthcheck.sdk.text import CONDITION_LIMIT, one_line, short_repr

HOOK_NAME = "healthcheck_commands"
# What a subcommand may be called: what a user types, and a column in --help.
NAME = re.compile(r"[a-z][a-z0-9-]{0,31}\Z")
FAILED = int(Status.UNKNOWN)


class LoadedCommand:
    """A plugin's command, with the plugin and distribution that contributed it."""

    __slots__ = ("builtin", "command", "distribution", "plugin")

    def __init__(self, command: Command, plugin: str, distribution: str, builtin: bool) -> None:
        self.command = command
        self.plugin = plugin
        self.distribution = distribution
        self.builtin = builtin


class CommandCatalog:
    """Usable plugin commands by name, and what could not be used (with the command's name)."""

    def __init__(self) -> None:
        self.commands: dict[str, LoadedCommand] = {}
        self.broken: list[BrokenPlugin] = []


def _commands_from(result, plugin: str) -> list[Command]:
    if not isinstance(result, (list, tuple)) or not all(isinstance(c, Command) for c in result):
        raise TypeError(
            f"{plugin}: {HOOK_NAME}() must return a list of healthcheck.sdk.console.Command"
        )
    for command in result:
        if not isinstance(command.name, str) or not NAME.match(command.name):
            raise ValueError(
                f"{plugin}: command name {short_repr(command.name, 60)}: use lower-case letters, "
                "digits and dashes (at most 32)"
            )
        if not isinstance(command.help, str) or not callable(command.run):
            raise TypeError(f"{plugin}: command {command.name}: needs a str help and a run()")
    return list(result)


def discover_commands(reserved=(), paths=None, extra_plugins=()) -> CommandCatalog:
    """Every plugin's commands; a name in ``reserved`` (the built-ins) or already taken by an
    earlier plugin (built-ins first, then by distribution) is recorded as broken."""
    pm, by_plugin_name, broken = _register_plugins(paths, extra_plugins)
    catalog = CommandCatalog()
    catalog.broken.extend(broken)
    for impl in pm.hook.healthcheck_commands.get_hookimpls():  # built-ins registered first
        ep = by_plugin_name[impl.plugin_name]
        try:
            commands = _commands_from(impl.function(), ep.name)
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS as exc:
            catalog.broken.append(BrokenPlugin(ep.name, ep.distribution, describe_error(exc)))
            continue
        for command in commands:
            holder = catalog.commands.get(command.name)
            if command.name in reserved:
                why = f"command {command.name!r} is a built-in command"
            elif holder is not None:
                why = f"command {command.name!r} is already provided by {holder.distribution}"
            else:
                catalog.commands[command.name] = LoadedCommand(
                    command, ep.name, ep.distribution, ep.builtin
                )
                continue
            catalog.broken.append(BrokenPlugin(ep.name, ep.distribution, why, command.name))
    return catalog


def run_command(prog: str, loaded: LoadedCommand, argv: list[str]) -> int:
    """Run a plugin's command; anything but an exit code, a usage error, Ctrl-C or a closed
    stdout (the console wrapper's to report) becomes one line on stderr and exit code 2."""
    name = loaded.command.name
    try:
        code = loaded.command.run(argv)
    except (UsageError, BrokenPipeError):
        raise
    except Exception as exc:
        _say(f"{prog} {name}: command failed ({loaded.distribution}): {describe_error(exc)}")
        return FAILED
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        _say(f"{prog} {name}: command returned {short_repr(code, 60)}, not an exit code")
        return FAILED
    return code


def _say(line: str) -> None:
    print(one_line(line, CONDITION_LIMIT), file=sys.stderr)
