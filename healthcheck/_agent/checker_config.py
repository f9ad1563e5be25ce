"""One entry of the agent config's ``checks`` list, validated into a :class:`CheckSpec`.

Also the scalar validators the whole config shares (:func:`expect`, :func:`duration`,
:func:`word`); every error is a :class:`ConfigError` naming the key. A checker's ``options``
go through the checker's own pipeline (:meth:`healthcheck.Checker.parse_options`); only the
key path in front of its error is the agent's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from healthcheck._declaration import Checker
from healthcheck._option import (
    DEFAULT_INTERVAL,
    DEFAULT_TIMEOUT,
    MAX_DURATION,
    MIN_INTERVAL,
    OptionError,
    Options,
    type_name,
)
from healthcheck._protocol import DEFAULT_MAX_OUTPUT_LENGTH
from healthcheck.sdk.duration import format_duration, parse_duration
from healthcheck.sdk.text import CONDITION_LIMIT, one_line, short_repr

DEFAULT_PLUGIN_TIMEOUT = DEFAULT_TIMEOUT  # NPD's pluginConfig.timeout
DEFAULT_PLUGIN_INTERVAL = DEFAULT_INTERVAL  # NPD's invoke_interval
MAX_OUTPUT_LENGTH = 1 << 16  # beyond 4 KiB of a plugin's output nothing is kept anyway
MAX_WORD = 253  # a name, condition type or reason: a Kubernetes name's length

CHECK_KEYS = (
    "checker",
    "name",
    "options",
    "interval",
    "timeout",
    "type",
    "condition",
    "reason",
    "healthyReason",
    "healthyMessage",
    "path",
    "args",
    "maxOutputLength",
)


class ConfigError(ValueError):
    """A configuration the agent refuses: one line naming the key."""


class CheckSpec:
    """One scheduled check, with every default resolved.

    Exactly one of ``checker`` (a :class:`healthcheck.Checker`) and ``argv`` (an external
    program) is set. ``permanent`` checks own condition ``condition``; temporary ones only raise
    Events with ``reason``.
    """

    __slots__ = (
        "argv",
        "checker",
        "condition",
        "healthy_message",
        "healthy_reason",
        "interval",
        "max_output_length",
        "name",
        "options",
        "permanent",
        "reason",
        "repair_inline",
        "timeout",
    )
    argv: list[str] | None
    checker: Checker | None
    condition: str
    healthy_message: str
    healthy_reason: str
    interval: float
    max_output_length: int | None
    name: str
    options: Options | None
    permanent: bool
    reason: str
    # False when a remediation rule owns this check's repair: the scheduler then runs the check
    # without it, so the repair happens only behind the fleet budget.
    repair_inline: bool
    timeout: float

    def __init__(self, **fields: Any) -> None:
        for slot in self.__slots__:
            setattr(self, slot, fields.get(slot))
        self.repair_inline = fields.get("repair_inline", True)

    def __repr__(self) -> str:
        return f"CheckSpec({self.name!r})"


def expect(value: Any, kind: type | tuple[type, ...], key: str) -> Any:
    """``value`` when it is a ``kind`` (a bool is no number here), else ConfigError naming
    ``key``."""
    ok = isinstance(value, kind) and not (kind in (int, (int, float)) and isinstance(value, bool))
    if not ok:
        want = type_name(kind() if not isinstance(kind, tuple) else 0)
        raise ConfigError(f"{key}: expected {want}, got {type_name(value)}")
    return value


def key_name(name: object) -> str:
    """A mapping key as it appears in an error's path (keys may be any YAML scalar)."""
    return one_line(name, 100) if isinstance(name, str) else short_repr(name, 100)


def duration(value: object, key: str, *, minimum: float = 0.0) -> float:
    """A duration string, positive, at least ``minimum`` and at most :data:`MAX_DURATION`
    (longer ones overflow the platform's timers in whichever thread first waits)."""
    if not isinstance(value, str):
        raise ConfigError(
            f'{key}: expected a duration string such as "30s", got {short_repr(value, 100)}'
        )
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    shown = one_line(value, 100)
    if seconds <= 0:
        raise ConfigError(f'{key}: duration "{shown}" must be > 0')
    if seconds < minimum:
        raise ConfigError(
            f'{key}: duration "{shown}" is below the minimum {format_duration(minimum)}'
        )
    if seconds > MAX_DURATION:
        raise ConfigError(
            f'{key}: duration "{shown}" is longer than the maximum {format_duration(MAX_DURATION)}'
        )
    return seconds


def word(value: object, key: str, limit: int = MAX_WORD) -> str:
    """A string that reaches the API server or a log line: one line of at most ``limit`` bytes."""
    text: str = expect(value, str, key)
    if one_line(text, limit) != text:
        raise ConfigError(
            f"{key}: must be one line of at most {limit} bytes, without control characters or "
            "leading or trailing blanks"
        )
    return text


def _options(checker: Checker, raw: object, key: str) -> Options:
    """The checker's options from the YAML mapping, through the checker's own pipeline."""
    if raw is None:
        raw = {}
    expect(raw, dict, key)
    try:
        options: Options = checker.parse_options(raw)
    except OptionError as exc:
        where = key if exc.key is None else f"{key}.{key_name(exc.key)}"
        raise ConfigError(f"{where}: {exc.reason}") from None
    return options


def parse_check(raw: object, index: int, catalog: Mapping[str, Checker]) -> CheckSpec:
    """Entry ``index`` of the ``checks`` list, every default resolved."""
    key = f"checks[{index}]"
    entry: dict[Any, Any] = expect(raw, dict, key)
    raw = entry
    for name in raw:
        if name not in CHECK_KEYS:
            raise ConfigError(
                f"{key}.{key_name(name)}: unknown key (known: {', '.join(CHECK_KEYS)})"
            )
    has_checker, has_path = "checker" in raw, "path" in raw
    if has_checker == has_path:
        raise ConfigError(f"{key}: give exactly one of 'checker' (built-in) or 'path' (program)")
    fields: dict[str, Any] = {}
    if has_checker:
        name = expect(raw["checker"], str, f"{key}.checker")
        if name not in catalog:
            known = ", ".join(sorted(catalog)) or "none installed"
            raise ConfigError(
                f"{key}.checker: unknown checker {short_repr(name, 100)} (available: {known})"
            )
        checker = catalog[name]
        for program_key in ("args", "maxOutputLength"):
            if program_key in raw:
                raise ConfigError(f"{key}.{program_key}: only for checks given by 'path'")
        decl = checker.condition
        if checker.interval < MIN_INTERVAL and "interval" not in raw:
            raise ConfigError(
                f"{key}.interval: {name} declares {format_duration(checker.interval)}, below the "
                f"minimum {format_duration(MIN_INTERVAL)}; set an interval"
            )
        fields.update(
            checker=checker,
            name=name,
            options=_options(checker, raw.get("options"), f"{key}.options"),
            interval=checker.interval,
            timeout=checker.timeout,
            permanent=decl.permanent,
            condition=decl.type,
            reason=decl.reason,
            healthy_reason=decl.healthy_reason,
            healthy_message=decl.healthy_message,
        )
    else:
        path = expect(raw["path"], str, f"{key}.path")
        if not path.isprintable() or len(path) > 4096:
            raise ConfigError(f"{key}.path: {short_repr(path, 100)} is not a usable path")
        if not os.path.isabs(path):
            raise ConfigError(f"{key}.path: {short_repr(path, 100)} must be an absolute path")
        if not os.path.exists(path):
            raise ConfigError(f'{key}.path: rule path "{one_line(path, 100)}" does not exist')
        args = expect(raw.get("args", []), list, f"{key}.args")
        for i, arg in enumerate(args):
            expect(arg, str, f"{key}.args[{i}]")
            if "\0" in arg:
                raise ConfigError(f"{key}.args[{i}]: must not contain a NUL character")
        if "options" in raw:
            raise ConfigError(f"{key}.options: only for checks given by 'checker'")
        limit = expect(
            raw.get("maxOutputLength", DEFAULT_MAX_OUTPUT_LENGTH), int, f"{key}.maxOutputLength"
        )
        if not 0 <= limit <= MAX_OUTPUT_LENGTH:
            raise ConfigError(f"{key}.maxOutputLength: must be between 0 and {MAX_OUTPUT_LENGTH}")
        for required in ("type", "reason"):
            if required not in raw:
                raise ConfigError(f"{key}.{required}: required for checks given by 'path'")
        fields.update(
            argv=[path, *args],
            name=os.path.basename(path),
            interval=DEFAULT_PLUGIN_INTERVAL,
            timeout=DEFAULT_PLUGIN_TIMEOUT,
            max_output_length=limit,
            condition="",
            healthy_reason="",
            healthy_message="",
        )
    if "name" in raw:
        fields["name"] = word(raw["name"], f"{key}.name")
        if not fields["name"]:
            raise ConfigError(f"{key}.name: must not be empty")
    if "interval" in raw:
        fields["interval"] = duration(raw["interval"], f"{key}.interval", minimum=MIN_INTERVAL)
    if "timeout" in raw:
        fields["timeout"] = duration(raw["timeout"], f"{key}.timeout")
    if "type" in raw:
        kind = expect(raw["type"], str, f"{key}.type")
        if kind not in ("permanent", "temporary"):
            raise ConfigError(f'{key}.type: "{one_line(kind, 100)}" is not permanent or temporary')
        fields["permanent"] = kind == "permanent"
    for yaml_key, field, limit in (
        ("condition", "condition", MAX_WORD),
        ("reason", "reason", MAX_WORD),
        ("healthyReason", "healthy_reason", MAX_WORD),
        ("healthyMessage", "healthy_message", CONDITION_LIMIT),
    ):
        if yaml_key in raw:
            fields[field] = word(raw[yaml_key], f"{key}.{yaml_key}", limit)
    if not fields.get("reason"):
        raise ConfigError(f"{key}.reason: must not be empty")
    if fields["permanent"]:
        if not fields.get("condition"):
            raise ConfigError(f"{key}.condition: a permanent check needs a condition type")
        if not fields.get("healthy_reason"):
            raise ConfigError(
                f"{key}.healthyReason: permanent problem {fields['condition']} does not have "
                "preset default condition"
            )
    return CheckSpec(**fields)
