"""The hook contract between the host and every plugin, built-in or third-party.

A plugin is a module (or any object) registered under the entry-point group ``healthcheck``::

    # pyproject.toml of your distribution
    [project.entry-points.healthcheck]
    my-check = "my_package.my_check"     # name the entry point after the checker it declares

and it implements the hooks below with :data:`healthcheck.hookimpl`. The host decides when to
run anything; a plugin only declares. Naming the entry point after the checker lets the
one-shot path (``healthcheck check my-check``) import that one module and nothing else.
"""

from __future__ import annotations

import pluggy

from healthcheck._markers import PROJECT_NAME

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def healthcheck_checkers():
    """Return the checkers this plugin offers, as a list of :class:`healthcheck.Checker`.

    Called once per process when the host discovers plugins. It must be cheap and free of side
    effects: import heavy libraries inside ``check``, not at module level, because ``healthcheck
    status`` and the agent import every plugin.

    A :class:`healthcheck.Checker` declares:

    - ``name``: the checker's name (``healthcheck check <name>``), letters, digits and dashes;
    - ``description``: one line for ``healthcheck list``;
    - ``check(ctx) -> Result``: the check. ``ctx.options`` holds the parsed options as attributes,
      ``ctx.remaining()`` the seconds left before the deadline. Raise freely: any exception
      becomes UNKNOWN with a one-line message. Return ``Result.ok()``, ``Result.problem(msg)``
      or ``Result.unknown(msg)``;
    - ``options``: :class:`healthcheck.Option` entries (name, type, default, help); each becomes a
      ``--kebab-case`` flag, an agent config key and an NPD rule argument. Every front door
      parses them through one pipeline, :meth:`healthcheck.Checker.parse_options`, whose one
      error, :class:`healthcheck.OptionError`, names the key; ``ctx.options`` has exactly the
      declared names (a misspelt one raises ``AttributeError``);
    - ``condition``: a :class:`healthcheck.Condition` naming the condition type, the problem
      reason, the healthy reason and message, and whether it is permanent (a NodeCondition) or
      temporary (an Event only);
    - ``interval`` and ``timeout`` in seconds: how often the agent runs it and how long it may
      take (NPD config defaults are derived from them);
    - optionally ``applies()``, ``validate(options)`` and ``npd_monitors`` (see
      :class:`healthcheck.Checker`);
    - optionally ``repair``: a :class:`healthcheck.sdk.repair.Repair` with ``action(ctx)`` (do it,
      raise on failure), ``uptime(ctx)`` (seconds the repaired service has been up),
      ``target(ctx)`` (what is repaired, e.g. the unit) and ``describe(ctx)`` (one line). The
      plugin never calls it itself: whenever ``check`` returns PROBLEM the runner hands it to
      the shared policy in :mod:`healthcheck.sdk.repair`, which repairs only when
      ``ctx.options.enable_repair`` is true, the uptime is strictly greater than
      ``ctx.options.cooldown_time``, no repair of the same target is recorded under
      ``ctx.options.state_dir`` within that cooldown, and ``ctx.options.dry_run_repair`` is
      false. Add :data:`healthcheck.sdk.repair.REPAIR_OPTIONS` to the checker's options to get those
      flags. A repair never changes the result; its outcome is logged on stderr.

    Two plugins that declare the same checker name do not break each other: the one registered
    under an entry point of that name wins, then the built-in one, then the first distribution by
    name; the loser is listed by ``healthcheck list`` as broken.
    """


@hookspec
def healthcheck_commands():
    """Return the subcommands this plugin adds to ``healthcheck``, as a list of
    :class:`healthcheck.sdk.console.Command`.

    ``healthcheck NAME ARGS...`` runs ``command.run(ARGS)`` for the command called ``NAME`` and
    exits with the integer it returns. The built-in maintenance-events family contributes
    ``healthcheck host-event-log`` this way (``plugins/maintenance_events/`` in the source).

    A :class:`~healthcheck.sdk.console.Command` declares:

    - ``name``: what the user types after ``healthcheck``: lower-case letters, digits and dashes,
      at most 32. A built-in subcommand's name (``check``, ``list``, ``status``, ``npd-config``,
      ``agent``) cannot be taken, nor one an earlier plugin holds (built-ins first, then by
      distribution name): such a command is left out, and ``healthcheck --help`` says why;
    - ``help``: one line for ``healthcheck --help``, which lists every plugin command;
    - ``run(argv) -> int``: the command, given the arguments after its name. Parse them with
      :func:`healthcheck.sdk.console.argument_parser` (its errors are one line and exit 2), or
      raise :class:`healthcheck.sdk.console.UsageError` yourself for bad input. Any other
      exception, or a return value that is not an exit code (0 to 255), becomes one line on
      stderr and exit code 2, never a traceback. stdout is the command's own.

    The hook is called only when ``healthcheck`` is given a command it does not know itself, and
    for ``--help``: keep it cheap and import what the command runs inside ``run``. It must not
    print or have other side effects.
    """
