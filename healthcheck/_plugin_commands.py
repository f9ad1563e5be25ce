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

from healthcheck._host import _PLUGIN_FAULTS, BrokenPlugin, _register_plugins, plugin_rank
from healthcheck._protocol import Status, describe_error
from healthcheck.sdk.console import Command, UsageError
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
    """Usable plugin commands by name; ``broken``: what a ``healthcheck_commands`` hook offered
    that cannot be used, with the command's name where it has a usable one (``checker``)."""

    def __init__(self) -> None:
        self.commands: dict[str, LoadedCommand] = {}
        self.broken: list[BrokenPlugin] = []


def _malformed(command: object) -> str | None:
    """Why ``command`` cannot be a subcommand, or ``None``."""
    if not isinstance(command, Command):
        return f"{short_repr(command, 60)} is not a healthcheck.sdk.console.Command"
    if not isinstance(command.name, str) or not NAME.match(command.name):
        return (
            f"command name {short_repr(command.name, 60)}: use lower-case letters, digits and "
            "dashes (at most 32)"
        )
    if not isinstance(command.help, str) or not callable(command.run):
        return f"command {command.name!r} needs a str help and a callable run"
    return None


def _usable_name(command: object) -> str | None:
    """The command's name when a user could type it (to tell them why it is broken)."""
    name = command.name if isinstance(command, Command) else None
    return name if isinstance(name, str) and NAME.match(name) else None


def discover_commands(reserved=(), paths=None, extra_plugins=()) -> CommandCatalog:
    """Every plugin's commands. One that is malformed, takes a name in ``reserved`` (the
    built-ins) or one an earlier plugin holds (built-ins first, then by distribution) is recorded
    as broken; so is a hook that raises or returns no list. Plugins that fail to load are
    ``healthcheck list``'s to report, not recorded here."""
    pm, by_plugin_name, _ = _register_plugins(paths, extra_plugins)
    catalog = CommandCatalog()
    # Our order, not pluggy's call order: pluggy moves tryfirst/trylast implementations, and a
    # plugin must not take a built-in's command by marking its hook trylast.
    impls = sorted(
        pm.hook.healthcheck_commands.get_hookimpls(),
        key=lambda i: plugin_rank(by_plugin_name[i.plugin_name]),
    )
    for impl in impls:
        ep = by_plugin_name[impl.plugin_name]

        def broken(why: str, name: str | None = None, ep=ep) -> None:
            catalog.broken.append(BrokenPlugin(ep.name, ep.distribution, why, name))

        try:
            offered = impl.function()
        except KeyboardInterrupt:
            raise
        except _PLUGIN_FAULTS as exc:
            broken(f"{HOOK_NAME}() failed: {describe_error(exc)}")
            continue
        if not isinstance(offered, (list, tuple)):
            broken(f"{HOOK_NAME}() returned {type(offered).__name__}, not a list of Command")
            continue
        for command in offered:
            why = _malformed(command)
            name = _usable_name(command)
            if why is None and command.name in reserved:
                why = f"command {command.name!r} is a built-in command"
            elif why is None and command.name in catalog.commands:
                holder = catalog.commands[command.name].distribution
                why = f"command {command.name!r} is already provided by {holder}"
            if why is not None:
                broken(why, name)
                continue
            catalog.commands[command.name] = LoadedCommand(
                command, ep.name, ep.distribution, ep.builtin
            )
    return catalog


def run_command(prog: str, loaded: LoadedCommand, argv: list[str]) -> int:
    """Run a plugin's command; anything but an exit code, a usage error, Ctrl-C or a closed
    stdout (the console wrapper's to report) becomes one line on stderr and exit code 2."""
    name = loaded.command.name
    code: object
    try:
        code = loaded.command.run(argv)
    except (UsageError, BrokenPipeError, KeyboardInterrupt):
        raise
    except SystemExit as exc:  # sys.exit(n), argparse's --help: an exit code like a return
        code = 0 if exc.code is None else exc.code
    except BaseException as exc:  # a plugin's bug, whatever it raised: one line, no traceback
        _say(f"{prog} {name}: command failed ({loaded.distribution}): {describe_error(exc)}")
        return FAILED
    if isinstance(code, bool) or not isinstance(code, int) or not 0 <= code <= 255:
        _say(f"{prog} {name}: command returned {short_repr(code, 60)}, not an exit code")
        return FAILED
    return code


def _say(line: str) -> None:
    print(one_line(line, CONDITION_LIMIT), file=sys.stderr)
