"""What a checker declares about itself: options, the condition it reports, how it is run.

One declaration feeds every front door: the CLI generates ``--kebab-case`` flags from
:class:`Option`, the agent reads intervals and conditions, ``npd-config`` writes NPD JSON. Plain
classes rather than dataclasses keep ``import healthcheck`` cheap on the one-shot path.
"""

from __future__ import annotations

import time

from healthcheck.duration import format_duration, parse_duration

_BOOL_WORDS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}
_TYPES = ("str", "int", "float", "bool", "duration")


def parse_bool(text: str) -> bool:
    """Parse a boolean as Go's strconv.ParseBool does (NPD writes ``--enable-repair=true``)."""
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise ValueError(f'invalid boolean "{text}": use true or false') from None


def _parse_int(text: str) -> int:
    # int() would also take " 3", "1_0" and non-ASCII digits such as "٣"; an option takes
    # ASCII digits with an optional sign only.
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(f'invalid integer "{text}"')
    return int(text, 10)


def _parse_float(text: str) -> float:
    try:
        if not text.isascii() or "_" in text or text != text.strip():
            raise ValueError(text)  # float() would take "٣", "1_0" and blanks around
        value = float(text)
    except ValueError:
        raise ValueError(f'invalid number "{text}"') from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f'invalid number "{text}"')
    return value


_PARSERS = {
    "str": str,
    "int": _parse_int,
    "float": _parse_float,
    "bool": parse_bool,
    "duration": parse_duration,
}


class Option:
    """One checker option.

    ``name`` is the Python attribute (``cooldown_time``); the flag is ``--cooldown-time`` unless
    ``flag`` says otherwise. ``type`` is one of ``str``, ``int``, ``float``, ``bool``,
    ``duration`` (seconds as float, written as NPD writes durations) or a callable that turns the
    flag's text into a value and raises ``ValueError`` with a one-line reason. ``multiple``
    options may be given several times and collect a list. ``minimum``/``maximum`` bound numbers.
    """

    __slots__ = (
        "aliases",
        "choices",
        "default",
        "flag",
        "help",
        "maximum",
        "metavar",
        "minimum",
        "multiple",
        "name",
        "type",
    )

    def __init__(
        self,
        name: str,
        *,
        type="str",
        default=None,
        help: str = "",
        choices=None,
        multiple: bool = False,
        flag: str | None = None,
        aliases=(),
        metavar: str | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> None:
        if not name.isidentifier():
            raise ValueError(f"option name {name!r} is not a Python identifier")
        if not callable(type) and type not in _TYPES:
            raise ValueError(f"option {name}: unknown type {type!r}")
        self.name = name
        self.type = type
        self.default = [] if multiple and default is None else default
        self.help = help
        self.choices = tuple(choices) if choices is not None else None
        self.multiple = multiple
        self.flag = flag or "--" + name.replace("_", "-")
        self.aliases = tuple(aliases)
        self.metavar = metavar
        self.minimum = minimum
        self.maximum = maximum

    def parse(self, text: str):
        """Turn the flag's text into a value; ``ValueError`` names what is wrong."""
        parser = self.type if callable(self.type) else _PARSERS[self.type]
        value = parser(text)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ValueError(f'"{text}" is not one of {allowed}')
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f'"{text}" is below the minimum {self.minimum:g}')
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f'"{text}" is above the maximum {self.maximum:g}')
        return value

    def format_default(self) -> str:
        """The default as a user would write it on the command line."""
        if self.type == "duration" and isinstance(self.default, (int, float)):
            return format_duration(self.default)
        if self.type == "bool":
            return "true" if self.default else "false"
        return "" if self.default is None else str(self.default)

    def __repr__(self) -> str:
        return f"Option({self.name!r}, type={self.type!r}, default={self.default!r})"


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

            print(f"{self.checker}: {message}", file=sys.stderr)


class Options:
    """Parsed option values, read as attributes (``ctx.options.cooldown_time``)."""

    def __init__(self, **values) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self.__dict__.items()))
        return f"Options({inner})"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Checker:
    """A checker's declaration: everything the host needs to run and report it.

    ``check(ctx) -> Result`` answers one question about the node. ``repair``, where present, is
    a :class:`healthcheck.repair.Repair`, run only through that module's shared policy after a
    PROBLEM result (declare :data:`healthcheck.repair.REPAIR_OPTIONS` among the options).
    ``applies()`` returns ``None`` when the checker makes sense on this machine, else a short
    reason (used by ``healthcheck status``). ``validate(options)`` raises ``ValueError`` for option
    combinations a single flag cannot catch. ``npd_monitors`` overrides the NPD config files
    ``npd-config`` writes for this checker.
    """

    __slots__ = (
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
        interval: float = 30.0,
        timeout: float = 5.0,
        repair=None,
        applies=None,
        validate=None,
        npd_monitors=None,
    ) -> None:
        if not name or not all(c.isalnum() or c == "-" for c in name) or not name[0].isalpha():
            raise ValueError(f"checker name {name!r}: use letters, digits and dashes")
        if timeout <= 0 or interval <= 0:
            raise ValueError(f"checker {name}: interval and timeout must be > 0")
        self.name = name
        self.description = description
        self.check = check
        self.condition = condition
        self.options = tuple(options)
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.repair = repair
        self.applies = applies
        self.validate = validate
        self.npd_monitors = tuple(npd_monitors) if npd_monitors is not None else None
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"checker {name}: duplicate option names")

    def defaults(self) -> Options:
        """Options with every default filled in."""
        return Options(**{o.name: _copy_default(o.default) for o in self.options})

    def __repr__(self) -> str:
        return f"Checker({self.name!r})"


def _copy_default(value):
    return list(value) if isinstance(value, list) else value
