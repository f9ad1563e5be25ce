"""What a checker declares about itself: options, the condition it reports, how it is run.

One declaration feeds every front door: the CLI generates ``--kebab-case`` flags from
:class:`Option`, the agent reads intervals and conditions, ``npd-config`` writes NPD JSON. Plain
classes rather than dataclasses keep ``import healthcheck`` cheap on the one-shot path.
"""

from __future__ import annotations

import time

# Re-exported: the host's modules and tests know these names from here.
from healthcheck._option import (
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    MAX_DURATION,
    MAX_INT,
    MAX_NAME,
    MIN_INTERVAL,
    Option,
    OptionError,
    Options,
    duration_in_bounds,
    option_value,
    options_class,
    parse_bool,
    parse_wait,
)
from healthcheck.sdk.text import one_line, short_repr

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_DURATION",
    "MAX_INT",
    "MAX_NAME",
    "MIN_INTERVAL",
    "CheckContext",
    "Checker",
    "Condition",
    "NpdMonitor",
    "NpdRule",
    "Option",
    "OptionError",
    "Options",
    "duration_in_bounds",
    "option_value",
    "options_class",
    "parse_bool",
    "parse_wait",
]


class Condition:
    """The NodeCondition (or, for temporary checks, the Event reason) a checker reports under.

    ``type`` is the condition type (``KubeletUnhealthy``); ``reason`` is the reason when the
    problem is present; ``healthy_reason``/``healthy_message`` are the defaults when it is not.
    A temporary check (``permanent=False``) raises an Event with ``reason`` instead of a
    condition, as NPD's temporary rules do.
    """

    __slots__ = ("healthy_message", "healthy_reason", "permanent", "reason", "type")

    def __init__(
        self,
        type: str,
        reason: str,
        healthy_reason: str = "",
        healthy_message: str = "",
        *,
        permanent: bool = True,
    ) -> None:
        if permanent and not (type and healthy_reason):
            raise ValueError("a permanent condition needs a type and a healthy reason")
        self.type = type
        self.reason = reason
        self.healthy_reason = healthy_reason
        self.healthy_message = healthy_message
        self.permanent = permanent

    def __repr__(self) -> str:
        kind = "permanent" if self.permanent else "temporary"
        return f"Condition({self.type!r}, {self.reason!r}, {kind})"


class NpdRule:
    """One rule of an NPD custom-plugin-monitor file.

    ``program`` names the console script to run (``health-checker``, ``log-counter``); ``None``
    runs ``healthcheck check <checker>``. ``args`` follow it verbatim.
    """

    __slots__ = ("args", "condition", "program", "timeout")

    def __init__(
        self,
        condition: Condition,
        args=(),
        *,
        program: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.condition = condition
        self.args = tuple(args)
        self.program = program
        self.timeout = timeout


class NpdMonitor:
    """One NPD custom-plugin-monitor JSON file (spec section 2.9)."""

    __slots__ = ("concurrency", "filename", "interval", "rules", "source", "timeout")

    def __init__(
        self,
        filename: str,
        *,
        source: str,
        rules,
        interval: float,
        timeout: float,
        concurrency: int = 1,
    ) -> None:
        self.filename = filename
        self.source = source
        self.rules = tuple(rules)
        self.interval = interval
        self.timeout = timeout
        self.concurrency = concurrency


class CheckContext:
    """What a running check gets: its parsed options and its deadline."""

    __slots__ = ("checker", "deadline", "options", "verbose")

    def __init__(self, checker: str, options, deadline: float, verbose: bool = False) -> None:
        self.checker = checker
        self.options = options
        self.deadline = deadline
        self.verbose = verbose

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def log(self, message: str) -> None:
        """Write a diagnostic line to stderr when running verbosely (stdout is the protocol)."""
        if self.verbose:
            import sys

            print(f"{self.checker}: {one_line(message, 1024)}", file=sys.stderr)


class Checker:
    """A checker's declaration: everything the host needs to run and report it.

    ``check(ctx) -> Result`` answers one question about the node. ``repair``, where present, is
    a :class:`healthcheck.sdk.repair.Repair`, run only through that module's shared policy after a
    PROBLEM result (declare :data:`healthcheck.sdk.repair.REPAIR_OPTIONS` among the options).
    ``applies()`` returns ``None`` when the checker makes sense on this machine, else a short
    reason (used by ``healthcheck status``). ``validate(options)`` raises ``ValueError`` for option
    combinations a single flag cannot catch; :meth:`parse_options` runs it after every value.
    ``npd_monitors`` overrides the NPD config files ``npd-config`` writes for this checker.
    """

    __slots__ = (
        "_by_key",
        "_options_type",
        "applies",
        "check",
        "condition",
        "description",
        "interval",
        "name",
        "npd_monitors",
        "options",
        "repair",
        "timeout",
        "validate",
    )

    def __init__(
        self,
        name: str,
        *,
        description: str,
        check,
        condition: Condition,
        options=(),
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        repair=None,
        applies=None,
        validate=None,
        npd_monitors=None,
    ) -> None:
        if (
            not isinstance(name, str)
            or not name
            or len(name) > MAX_NAME
            # ASCII only: str.isalnum takes "é" and "٣", which NPD configs and metric labels
            # would then carry.
            or not name.isascii()
            or not all(c.isalnum() or c == "-" for c in name)
            or not name[0].isalpha()
        ):
            raise ValueError(
                f"checker name {short_repr(name, 100)}: use letters, digits and dashes "
                f"(at most {MAX_NAME})"
            )
        # Refused here, when the plugin is loaded, rather than as an OverflowError in the
        # thread that first waits on it.
        self.interval = duration_in_bounds(interval, f"checker {name}: interval")
        self.timeout = duration_in_bounds(timeout, f"checker {name}: timeout")
        self.name = name
        self.description = description
        self.check = check
        self.condition = condition
        self.options = tuple(options)
        self.repair = repair
        self.applies = applies
        self.validate = validate
        self.npd_monitors = tuple(npd_monitors) if npd_monitors is not None else None
        names = tuple(o.name for o in self.options)
        if len(set(names)) != len(names):
            raise ValueError(f"checker {name}: duplicate option names")
        self._options_type = options_class(f"checker {name}", names)
        # An option is known by its name and by its flag's spelling (agent YAML takes both).
        self._by_key = {o.name.replace("_", "-"): o for o in self.options}
        self._by_key.update({o.name: o for o in self.options})

    def defaults(self) -> Options:
        """Options with every default filled in (no validation)."""
        return self._options_type(**{o.name: _copy_default(o.default) for o in self.options})

    def parse_value(self, key, raw):
        """One raw value for the option ``key`` (its name or kebab-case name), parsed.

        ``raw`` is what a front door has: argv text, a YAML scalar, or for a ``multiple``
        option a list of them (the result is then always a list). Type, choices and bounds
        are the :class:`Option`'s. Raises :class:`OptionError` naming ``key``.
        """
        opt = self._by_key.get(key) if isinstance(key, str) else None
        if opt is None:
            known = ", ".join(o.name for o in self.options) or "none"
            raise OptionError(key, f"unknown option of {self.name} (known: {known})")
        try:
            return option_value(opt, raw)
        except OptionError:
            raise
        except ValueError as exc:
            raise OptionError(key, str(exc)) from None

    def parse_options(self, raw=None, *, given=None, validate: bool = True) -> Options:
        """The one options pipeline: raw values in, validated :class:`Options` out.

        Starts from the declared defaults; ``given`` maps option names to values a front door
        already parsed with :meth:`parse_value` (one that must report errors in argv order);
        each ``raw`` item goes through :meth:`parse_value`, in the mapping's order. Then the
        checker's ``validate()`` sees the whole, unless ``validate`` is false. Every refusal is
        an :class:`OptionError`: ``key`` names the option, or is ``None`` for ``validate()``.
        """
        options = self.defaults()
        for name, value in (given or {}).items():
            setattr(options, self._by_key[name].name, value)
        for key, value in (raw or {}).items():
            parsed = self.parse_value(key, value)
            setattr(options, self._by_key[key].name, parsed)
        if validate and self.validate is not None:
            try:
                self.validate(options)
            except OptionError:
                raise
            except ValueError as exc:
                raise OptionError(None, str(exc)) from None
        return options

    def __repr__(self) -> str:
        return f"Checker({self.name!r})"


def _copy_default(value):
    return list(value) if isinstance(value, list) else value
