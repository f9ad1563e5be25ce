"""What a checker declares about itself: options, the condition it reports, how it is run.

One declaration feeds every front door: the CLI generates ``--kebab-case`` flags from
:class:`Option`, the agent reads intervals and conditions, ``npd-config`` writes NPD JSON. Plain
classes rather than dataclasses keep ``import healthcheck`` cheap on the one-shot path.
"""

from __future__ import annotations

import time

from healthcheck.sdk.duration import format_duration, parse_duration
from healthcheck.sdk.text import one_line, short_repr

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

# Bounds on every duration and number the host turns into a timer or a size. The platform's
# timers refuse more than threading.TIMEOUT_MAX (about 292 years here) and raise
# OverflowError in whichever thread first waits; a year is far inside that, with room for
# the sums (deadline + grace) built from it, and longer than any check could sensibly wait.
MAX_DURATION = 365 * 24 * 3600.0  # 8760h
# The shortest interval the agent schedules a check at: below it a check spins a core.
MIN_INTERVAL = 0.1
MAX_NAME = 63  # a checker name: a label in metrics, a file name in npd-config
MAX_INT = (1 << 63) - 1  # Go's int64, as NPD parses integers


def duration_in_bounds(
    seconds, what: str, *, minimum: float = 0.0, maximum: float = MAX_DURATION
) -> float:
    """``seconds`` as a float when it is a finite number in ``(minimum, maximum]`` (``minimum``
    itself allowed when it is not 0); else ``ValueError`` with one line naming ``what``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"{what}: expected a number of seconds, got {type(seconds).__name__}")
    value = float(seconds) if abs(seconds) < 1e300 else float("inf")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{what}: must be a finite duration")
    if value <= 0 or value < minimum:
        floor = f" (at least {format_duration(minimum)})" if minimum > 0 else ""
        raise ValueError(f"{what}: must be > 0{floor}")
    if value > maximum:
        raise ValueError(
            f"{what}: {format_duration(value)} is longer than {format_duration(maximum)}"
        )
    return value


def parse_bool(text: str) -> bool:
    """Parse a boolean as Go's strconv.ParseBool does (NPD writes ``--enable-repair=true``)."""
    try:
        return _BOOL_WORDS[text]
    except KeyError:
        raise ValueError(f'invalid boolean "{_shown(text)}": use true or false') from None


def _shown(text: str) -> str:
    """Flag text echoed in an error: one line, bounded (argv may hold anything)."""
    return one_line(text, 100, marker="…")


def _parse_int(text: str) -> int:
    # ASCII digits only: int() would take "٣" and " 3" and "1_000", which no user means.
    digits = text[1:] if text[:1] in "+-" else text
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValueError(f'invalid integer "{_shown(text)}"')
    value = int(text, 10)
    if not -MAX_INT - 1 <= value <= MAX_INT:
        raise ValueError(f'integer "{_shown(text)}" is out of range')
    return value


def _parse_float(text: str) -> float:
    # float() would take "٣", "1_0" and blanks around; "nan" and "inf" are no option value.
    if not text.isascii() or len(text) > 100 or "_" in text or text != text.strip():
        raise ValueError(f'invalid number "{_shown(text)}"')
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f'invalid number "{_shown(text)}"') from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f'invalid number "{_shown(text)}"')
    return value


def parse_wait(text: str) -> float:
    """A duration something will wait on (``check --timeout``): at most :data:`MAX_DURATION`.

    Duration *options* are not held to it, because NPD takes any Go duration for them
    (``--cooldown-time=9223372036s``) and none is a wait of its own: the probes cut theirs to
    the check's deadline, which is bounded.
    """
    value = parse_duration(text)
    if abs(value) > MAX_DURATION:
        raise ValueError(
            f'duration "{_shown(text)}" is longer than {format_duration(MAX_DURATION)}'
        )
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
        shown = _shown(text)
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ValueError(f'"{shown}" is not one of {allowed}')
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f'"{shown}" is below the minimum {self.minimum:g}')
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f'"{shown}" is above the maximum {self.maximum:g}')
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

            print(f"{self.checker}: {one_line(message, 1024)}", file=sys.stderr)


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
    a :class:`healthcheck.sdk.repair.Repair`, run only through that module's shared policy after a
    PROBLEM result (declare :data:`healthcheck.sdk.repair.REPAIR_OPTIONS` among the options).
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
