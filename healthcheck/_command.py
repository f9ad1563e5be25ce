"""A subcommand a plugin contributes to ``healthcheck`` (published as
:class:`healthcheck.sdk.console.Command`; here so that the host can check one without
importing the console module, which imports the host)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


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
