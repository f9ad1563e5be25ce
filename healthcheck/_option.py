"""Checker options: how one raw value becomes a typed one, and the typed values a check reads.

The one options pipeline (:meth:`healthcheck.Checker.parse_options`) is built from the pieces
here: :class:`Option` parses one flag's text, :func:`option_value` turns any front door's raw
value (argv text, a YAML scalar, a list for a ``multiple`` option) into the Option's input, and
:class:`OptionError` is the one error every step raises, naming the key. Plain classes rather
than dataclasses keep ``import healthcheck`` cheap on the one-shot path.
"""

from __future__ import annotations

from healthcheck.sdk.duration import format_duration, parse_duration
from healthcheck.sdk.text import one_line, short_repr

TYPE_CHECKING = False  # typing is not imported on the one-shot path; mypy reads this block
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

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
# What a checker that declares no interval or timeout gets, and what an NPD-style program
# check in the agent config gets: NPD's own defaults (invoke_interval, pluginConfig.timeout).
DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 5.0


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


_PARSERS: dict[str, Callable[[str], Any]] = {
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
        type: str | Callable[[str], Any] = "str",
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
        kind = self.type
        parser: Callable[[str], Any] = kind if callable(kind) else _PARSERS[kind]
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


class OptionError(ValueError):
    """A raw option value (or combination) a checker refuses.

    ``key`` is the option as the front door named it (``threshold``, ``cooldown-time``), or
    ``None`` when the checker's ``validate()`` refused the combination; ``reason`` is one line
    saying what is wrong, without the key, so each front door words the whole error its own way
    (``argument --threshold: ...``, ``checks[0].options.threshold: ...``). ``str(error)`` is the
    reason.
    """

    def __init__(self, key: object, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


def type_name(value) -> str:
    """What a YAML value is, for an error: ``a mapping``, ``a list``, ``a number``, ..."""
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _option_text(opt: Option, value) -> str:
    """A raw scalar as the text :meth:`Option.parse` reads (argv gives text, YAML scalars)."""
    if isinstance(value, str):
        return value
    if opt.type == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        raise ValueError(f"expected a string, got {type_name(value)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a scalar for option {opt.name}, got {type_name(value)}")
    if opt.type == "duration":
        raise ValueError(f'expected a duration string such as "30s", got {short_repr(value, 100)}')
    return str(value)


def option_value(opt: Option, raw):
    """``raw`` parsed for ``opt``: a ``multiple`` option takes one value or a list and gives a
    list (an Option whose parse yields a list, such as ``--log-pattern``, is flattened into it);
    any other takes one scalar. ``ValueError`` with one line on anything else."""
    if not opt.multiple:
        if isinstance(raw, list):
            raise ValueError("expected a scalar, got a list")
        return opt.parse(_option_text(opt, raw))
    values = []
    for item in raw if isinstance(raw, list) else [raw]:
        parsed = opt.parse(_option_text(opt, item))
        values.extend(parsed if isinstance(parsed, list) else [parsed])
    return values


class Options:
    """Parsed option values, read as attributes (``ctx.options.cooldown_time``).

    Each checker gets a class of its own whose ``__slots__`` are its declared option names, so
    a misspelt name fails at once, naming the options there are. ``Options(**values)`` builds
    an instance with exactly those names.
    """

    __slots__ = ()
    _owner = "options"

    def __new__(cls, **values):
        if cls is Options:
            cls = options_class("options", tuple(values))
        return object.__new__(cls)

    def __init__(self, **values) -> None:
        for name, value in values.items():
            setattr(self, name, value)

    def __getattr__(self, name: str):
        # Only reached when normal lookup failed: an unknown name, or a slot never set.
        names = ", ".join(type(self).__slots__) or "none"
        raise AttributeError(f"{self._owner} has no option {name!r} (options: {names})")

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(self.as_dict().items()))
        return f"Options({inner})"

    def as_dict(self) -> dict:
        """The values set, by option name."""
        missing = object()
        names: tuple[str, ...] = type(self).__slots__
        values = ((name, getattr(self, name, missing)) for name in names)
        return {name: value for name, value in values if value is not missing}


_CLASSES: dict[tuple[str, tuple[str, ...]], type] = {}


def options_class(owner: str, names: tuple[str, ...]) -> type:
    """The :class:`Options` subclass holding exactly ``names`` (made once per owner and names)."""
    key = (owner, names)
    cls = _CLASSES.get(key)
    if cls is None:
        cls = type("Options", (Options,), {"__slots__": names, "_owner": owner})
        _CLASSES[key] = cls
    return cls
