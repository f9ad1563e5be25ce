"""What a console script or a plugin's subcommand needs: one ``main()`` wrapper, the checkers.

A front door (``healthcheck``, the drop-in ``health-checker`` and ``log-counter``, a plugin's
own subcommand contributed through :func:`healthcheck.hookspecs.healthcheck_commands`) only
translates its syntax; the rest is here, the same for all of them:

- :func:`console_main` runs the script's body and turns every way it can end into one exit code
  and at most one line: a :class:`UsageError` (exit 2, worded by the front door), Ctrl-C (130),
  a reader of stdout that went away (0, and no traceback at exit), any other exception (one
  ``prog: internal error: ...`` line on stderr, exit 2, never a traceback);
- :func:`find_checker` and :func:`run_checker` find an installed checker by name and run it once
  under its deadline, its options given raw (as text or YAML scalars) or already parsed;
- :func:`argument_parser` is an ``argparse`` parser whose errors are one-line
  :class:`UsageError`\\ s, for subcommands; :func:`positive_duration` and
  :func:`non_negative_int` are argument types for it;
- :class:`Command` is what the ``healthcheck_commands`` hook returns.

Nothing here imports ``argparse`` until a parser is built: the drop-ins parse flags as Go's pflag
does (:mod:`healthcheck.sdk.pflag`) and their one-shot path does not pay for it.
"""

from __future__ import annotations

import os
import sys

from healthcheck import _host
from healthcheck._declaration import Checker
from healthcheck._option import Options, parse_wait
from healthcheck._protocol import Status, describe_error
from healthcheck.sdk.text import CONDITION_LIMIT, one_line

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping, Sequence
    from typing import IO, NoReturn

    from _typeshed import SupportsWrite

    from healthcheck._runner import Outcome

__all__ = [
    "USAGE_EXIT",
    "Command",
    "UsageError",
    "argument_parser",
    "console_main",
    "find_checker",
    "non_negative_int",
    "positive_duration",
    "run_checker",
    "stdout_gone",
]

# The exit code of bad input, and of anything else that kept a front door from answering:
# NPD reads 2 (UNKNOWN) as "the check could not tell".
USAGE_EXIT = int(Status.UNKNOWN)
_INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class UsageError(Exception):
    """Bad input from the user: one line, exit code 2, never a traceback.

    Raise it anywhere under :func:`console_main` (or in a :class:`Command`'s ``run``); the message
    is printed as the front door words usage errors (by default on stderr).
    """


class Command:
    """One subcommand a plugin adds to ``healthcheck`` (``healthcheck NAME ARGS...``).

    ``name`` is the subcommand (lower-case letters, digits and dashes; a built-in's name is
    refused), ``help`` one line for ``healthcheck --help``, and ``run(argv) -> int`` runs it with
    the arguments after the name and returns the exit code. ``run`` may raise
    :class:`UsageError` for bad input; anything else it raises becomes one line and exit 2.
    """

    __slots__ = ("help", "name", "run")

    def __init__(self, name: str, help: str, run: Callable[[list[str]], int]) -> None:
        self.name = name
        self.help = help
        self.run = run

    def __repr__(self) -> str:
        return f"Command({self.name!r})"


def stdout_gone() -> None:
    """stdout's reader went away (EPIPE): point stdout at /dev/null, so that neither a later
    print nor the interpreter's final flush raises again (a traceback, exit 120)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def _usage_on_stderr(message: str) -> int:
    print(one_line(message, CONDITION_LIMIT), file=sys.stderr)
    return USAGE_EXIT


def console_main(
    run: Callable[[list[str]], int],
    argv: Sequence[str] | None = None,
    *,
    prog: str,
    on_usage_error: Callable[[str], int] | None = None,
) -> int:
    """Run a console script's body ``run(argv)`` and return the process's exit code.

    ``argv`` defaults to ``sys.argv[1:]``. A :class:`UsageError` goes to ``on_usage_error``
    (default: its line on stderr, exit 2); KeyboardInterrupt exits 130; a closed stdout
    (BrokenPipeError) exits 0 with stdout pointed at /dev/null; any other exception prints
    ``PROG: internal error: Type: message`` on stderr and exits 2. stdout is flushed here, so
    that a reader gone by then does not turn the result's exit code into the interpreter's 120.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = run(args)
    except UsageError as exc:
        try:
            code = (on_usage_error or _usage_on_stderr)(str(exc))
        except BrokenPipeError:  # the usage error was for stdout, and nobody reads it
            stdout_gone()
            code = USAGE_EXIT
    except KeyboardInterrupt:
        return _INTERRUPTED_EXIT
    except BrokenPipeError:
        stdout_gone()
        return 0
    except SystemExit:
        raise  # an exit the body chose (argparse's --help): its code stands
    except BaseException as exc:  # a bug of ours or a plugin's: one line, never a traceback
        print(f"{prog}: internal error: {describe_error(exc)}", file=sys.stderr)
        return USAGE_EXIT
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()
    except (OSError, ValueError, AttributeError):
        pass  # no stdout at all (closed, or None): the exit code still says it
    return code


# ------------------------------------------------------------------------------------ checkers


def find_checker(name: str) -> Checker:
    """The installed checker called ``name``, importing only its plugin where it can.

    Raises ``LookupError`` with one line (``unknown checker 'x' (available: ...)`` or why the
    plugin offering it is broken).
    """
    return _host.find(name).checker


def run_checker(
    checker: Checker | str,
    options: Options | Mapping[str, object] | None = None,
    *,
    timeout: float | None = None,
    verbose: bool = False,
    repair: bool = True,
) -> Outcome:
    """Run one checker once under a deadline and return its outcome.

    ``checker`` is a :class:`healthcheck.Checker` or an installed checker's name. ``options`` are
    parsed :class:`~healthcheck._option.Options` (from :meth:`healthcheck.Checker.parse_options`)
    or a mapping of raw values parsed here (``OptionError`` naming the key when one is refused);
    ``None`` runs with the defaults. ``timeout`` defaults to the checker's own. Whatever the
    check does (raise, hang, return nonsense) the outcome holds a :class:`healthcheck.Result`:
    ``outcome.result``, ``outcome.duration`` (seconds) and ``outcome.timed_out``.
    """
    # Here, not at the top: a usage error or --help never starts a check, nor pays for threading.
    from healthcheck._runner import run_check

    if isinstance(checker, str):
        checker = find_checker(checker)
    if not isinstance(options, Options):
        options = checker.parse_options(options)
    return run_check(checker, options, timeout, verbose, repair)


# ------------------------------------------------------------------------------------ argparse


def positive_duration(text: str) -> float:
    """An argparse ``type``: a duration (``5s``, ``1m30s``) above 0 and at most 8760h."""
    # argparse is loaded by now: only a parser calls this.
    import argparse

    try:
        value = parse_wait(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f'duration "{one_line(text, 100)}" must be > 0')
    return value


def non_negative_int(text: str) -> int:
    """An argparse ``type``: a decimal integer >= 0 (ASCII digits, no blanks)."""
    # argparse is loaded by now: only a parser calls this.
    import argparse

    from healthcheck._option import Option

    try:
        value: int = Option("value", type="int").parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'"{one_line(text, 100)}" must be >= 0')
    return value


_PARSER_CLASS: type[argparse.ArgumentParser] | None = None


def argument_parser(
    prog: str,
    description: str | None = None,
    *,
    help_file: Callable[[], IO[str]] | None = None,
) -> argparse.ArgumentParser:
    """An ``argparse.ArgumentParser`` for a subcommand: an error raises :class:`UsageError`
    with ``PROG: message`` on one line (no usage dump), ``--help`` prints to ``help_file()``
    (default: ``sys.stdout``) and exits 0."""
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        _PARSER_CLASS = _parser_class()
    parser = _PARSER_CLASS(prog=prog, description=description)
    parser.help_file = help_file  # type: ignore[attr-defined]
    return parser


def _parser_class() -> type[argparse.ArgumentParser]:
    # argparse only for front doors that parse this way: the drop-ins never import it.
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's formatter without its ``import shutil``: a one-shot check never prints
        help, yet argparse builds a formatter per option, and shutil costs ~2 ms."""

        def __init__(self, prog: str) -> None:
            try:
                width = os.get_terminal_size(sys.stdout.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = 100
            super().__init__(prog, width=max(40, width - 2))

    class Parser(argparse.ArgumentParser):
        help_file: Callable[[], IO[str]] | None = None

        def __init__(self, prog: str, description: str | None) -> None:
            super().__init__(prog=prog, description=description, formatter_class=Formatter)

        def print_help(self, file: SupportsWrite[str] | None = None) -> None:
            if file is None and self.help_file is not None:
                file = self.help_file()
            super().print_help(file)

        def error(self, message: str) -> NoReturn:
            raise UsageError(f"{self.prog}: {one_line(message, CONDITION_LIMIT)}")

    return Parser
