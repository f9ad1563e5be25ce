"""What every ``healthcheck`` subcommand shares: where its own output goes, and its parser.

While a subcommand imports and runs plugins, fd 1 belongs to them no more (see
:class:`~healthcheck._protocol.ProtocolStdout`): the command's own output goes to :func:`out`.
"""

from __future__ import annotations

import sys

from healthcheck.sdk.console import UsageError, argument_parser

PROG = "healthcheck"
# The real stdout, kept from plugins while one runs (set by _cli.main for the commands that
# claim it); None means sys.stdout.
_out = None

__all__ = ["PROG", "UsageError", "out", "parser", "set_out"]


def out():
    """The stream for the command's own output (never a plugin's)."""
    return _out or sys.stdout


def set_out(stream) -> None:
    """Send the command's own output to ``stream`` (``None``: back to ``sys.stdout``)."""
    global _out
    _out = stream


def parser(prog: str, description: str | None = None):
    """A subcommand's argparse parser: errors are one-line :class:`UsageError`\\ s, ``--help``
    goes to :func:`out` (fd 1 is stderr while plugins are loaded)."""
    return argument_parser(prog, description, help_file=out)
