"""The agent's YAML configuration, validated strictly before anything runs.

Every error is a :class:`ConfigError` with one line that names the key (``checks[2].interval``)
and what is wrong with it; the CLI prints it and exits 2.

::

    heartbeatPeriod: 5m            # PATCH at least this often even without a change
    eventNamespace: default
    metrics: 127.0.0.1:20257       # "" disables
    server: 127.0.0.1:20256        # /healthz and /conditions; "" disables
    checks:
      - checker: conntrack          # a built-in or pip-installed checker ...
        options: {threshold: 90}
        interval: 30s
      - name: ntp                   # ... or an NPD-style custom plugin: path + args
        path: /etc/healthcheck/check_ntp.sh
        args: [--strict]
        type: permanent
        condition: NTPProblem
        reason: NTPIsDown
        healthyReason: NTPIsUp
        healthyMessage: ntp service is up
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from healthcheck._agent.traffic import KEYS as TRAFFIC_KEYS
from healthcheck._agent.traffic import TrafficSettings, parse_traffic
from healthcheck._declaration import MAX_DURATION, MIN_INTERVAL, Checker, Options
from healthcheck._protocol import describe_error
from healthcheck.sdk.duration import format_duration, parse_duration
from healthcheck.sdk.text import CONDITION_LIMIT, one_line, short_repr

if TYPE_CHECKING:
    from healthcheck._agent.remediation.config import RemediationConfig

DEFAULT_HEARTBEAT = 300.0
DEFAULT_METRICS = "127.0.0.1:20257"
DEFAULT_SERVER = "127.0.0.1:20256"
DEFAULT_NAMESPACE = "default"
DEFAULT_PLUGIN_TIMEOUT = 5.0  # NPD's pluginConfig.timeout
DEFAULT_PLUGIN_INTERVAL = 30.0  # NPD's invoke_interval
MAX_CONFIG_BYTES = 1 << 20
# The config nests four levels (checks, a check, its options, an option's list); anything
# much deeper is not a config, and PyYAML's composer recurses once per level.
MAX_DEPTH = 16
MIN_HEARTBEAT = 1.0  # at most one heartbeat PATCH a second
MAX_OUTPUT_LENGTH = 1 << 16  # beyond 4 KiB of a plugin's output nothing is kept anyway
MAX_WORD = 253  # a name, condition type or reason: a Kubernetes name's length

TOP_KEYS = (
    "checks",
    "heartbeatPeriod",
    "eventNamespace",
    "metrics",
    "server",
    "remediation",
    *TRAFFIC_KEYS,
)
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
    timeout: float

    def __init__(self, **fields) -> None:
        for slot in self.__slots__:
            setattr(self, slot, fields.get(slot))

    def __repr__(self) -> str:
        return f"CheckSpec({self.name!r})"


class AgentConfig:
    """The whole validated configuration."""

    def __init__(self, checks, heartbeat, namespace, metrics, server) -> None:
        self.checks: list[CheckSpec] = checks
        self.heartbeat: float = heartbeat
        self.namespace: str = namespace
        self.metrics: tuple[str, int] | None = metrics
        self.server: tuple[str, int] | None = server
        self.remediation: RemediationConfig | None = None
        self.traffic = TrafficSettings()  # rate limit and spread (healthcheck._agent.traffic)

    def condition_types(self) -> list[CheckSpec]:
        """The first permanent check of each condition type, in config order."""
        seen: dict[str, CheckSpec] = {}
        for spec in self.checks:
            if spec.permanent and spec.condition not in seen:
                seen[spec.condition] = spec
        return list(seen.values())


def _type_name(value) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def _expect(value, kind, key: str):
    ok = isinstance(value, kind) and not (kind in (int, (int, float)) and isinstance(value, bool))
    if not ok:
        want = _type_name(kind() if not isinstance(kind, tuple) else 0)
        raise ConfigError(f"{key}: expected {want}, got {_type_name(value)}")
    return value


def _key_name(name) -> str:
    """A mapping key as it appears in an error's path (keys may be any YAML scalar)."""
    return one_line(name, 100) if isinstance(name, str) else short_repr(name, 100)


def _duration(value, key: str, *, minimum: float = 0.0) -> float:
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


def _word(value, key: str, limit: int = MAX_WORD) -> str:
    """A string that reaches the API server or a log line: one line of at most ``limit`` bytes."""
    _expect(value, str, key)
    if one_line(value, limit) != value:
        raise ConfigError(
            f"{key}: must be one line of at most {limit} bytes, without control characters or "
            "leading or trailing blanks"
        )
    return value


def parse_address(value, key: str) -> tuple[str, int] | None:
    """``host:port`` (IPv6 as ``[::1]:port``); an empty string disables the listener."""
    _expect(value, str, key)
    if value == "":
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    # ASCII digits only: "²" passes str.isdigit() and then fails int().
    ok = sep and host and port.isascii() and port.isdigit() and len(port) <= 5
    if not ok or not 0 <= int(port) <= 65535 or not host.isprintable():
        raise ConfigError(
            f'{key}: "{one_line(value, 100)}" is not host:port (e.g. 127.0.0.1:20257)'
        )
    return host, int(port)


def _option_text(value, opt, key: str) -> str:
    if opt.type == "bool":
        if isinstance(value, bool):
            return "true" if value else "false"
        return _expect(value, str, key)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigError(
            f"{key}: expected a scalar for option {opt.name}, got {_type_name(value)}"
        )
    if opt.type == "duration" and not isinstance(value, str):
        raise ConfigError(
            f'{key}: expected a duration string such as "30s", got {short_repr(value, 100)}'
        )
    return str(value)


def _options(checker, raw, key: str) -> Options:
    options = checker.defaults()
    if raw is None:
        raw = {}
    _expect(raw, dict, key)
    by_name = {o.name: o for o in checker.options}
    by_name.update({o.name.replace("_", "-"): o for o in checker.options})
    for name, value in raw.items():
        opt_key = f"{key}.{_key_name(name)}"
        opt = by_name.get(name) if isinstance(name, str) else None
        if opt is None:
            known = ", ".join(o.name for o in checker.options) or "none"
            raise ConfigError(f"{opt_key}: unknown option of {checker.name} (known: {known})")
        values = value if opt.multiple and isinstance(value, list) else [value]
        if opt.multiple is False and isinstance(value, list):
            raise ConfigError(f"{opt_key}: expected a scalar, got a list")
        try:
            parsed = [opt.parse(_option_text(v, opt, opt_key)) for v in values]
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{opt_key}: {exc}") from None
        setattr(options, opt.name, parsed if opt.multiple else parsed[0])
    if checker.validate is not None:
        try:
            checker.validate(options)
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    return options


def _check(raw, index: int, catalog) -> CheckSpec:
    key = f"checks[{index}]"
    _expect(raw, dict, key)
    for name in raw:
        if name not in CHECK_KEYS:
            raise ConfigError(
                f"{key}.{_key_name(name)}: unknown key (known: {', '.join(CHECK_KEYS)})"
            )
    has_checker, has_path = "checker" in raw, "path" in raw
    if has_checker == has_path:
        raise ConfigError(f"{key}: give exactly one of 'checker' (built-in) or 'path' (program)")
    fields: dict = {}
    if has_checker:
        name = _expect(raw["checker"], str, f"{key}.checker")
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
        path = _expect(raw["path"], str, f"{key}.path")
        if not path.isprintable() or len(path) > 4096:
            raise ConfigError(f"{key}.path: {short_repr(path, 100)} is not a usable path")
        if not os.path.isabs(path):
            raise ConfigError(f"{key}.path: {short_repr(path, 100)} must be an absolute path")
        if not os.path.exists(path):
            raise ConfigError(f'{key}.path: rule path "{one_line(path, 100)}" does not exist')
        args = _expect(raw.get("args", []), list, f"{key}.args")
        for i, arg in enumerate(args):
            _expect(arg, str, f"{key}.args[{i}]")
            if "\0" in arg:
                raise ConfigError(f"{key}.args[{i}]: must not contain a NUL character")
        if "options" in raw:
            raise ConfigError(f"{key}.options: only for checks given by 'checker'")
        limit = _expect(raw.get("maxOutputLength", 80), int, f"{key}.maxOutputLength")
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
        fields["name"] = _word(raw["name"], f"{key}.name")
        if not fields["name"]:
            raise ConfigError(f"{key}.name: must not be empty")
    if "interval" in raw:
        fields["interval"] = _duration(raw["interval"], f"{key}.interval", minimum=MIN_INTERVAL)
    if "timeout" in raw:
        fields["timeout"] = _duration(raw["timeout"], f"{key}.timeout")
    if "type" in raw:
        kind = _expect(raw["type"], str, f"{key}.type")
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
            fields[field] = _word(raw[yaml_key], f"{key}.{yaml_key}", limit)
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


def parse_config(data, catalog) -> AgentConfig:
    """Validate the decoded YAML ``data`` against ``catalog`` (checker name -> Checker)."""
    if data is None:
        data = {}
    _expect(data, dict, "config")
    for name in data:
        if name not in TOP_KEYS:
            raise ConfigError(f"{_key_name(name)}: unknown key (known: {', '.join(TOP_KEYS)})")
    raw_checks = _expect(data.get("checks", []), list, "checks")
    checks = [_check(raw, i, catalog) for i, raw in enumerate(raw_checks)]
    names: dict[str, int] = {}
    for i, spec in enumerate(checks):
        if spec.name in names:
            raise ConfigError(
                f"checks[{i}].name: {spec.name!r} is already used by checks[{names[spec.name]}]; "
                "give one of them a distinct 'name'"
            )
        names[spec.name] = i
    heartbeat = _duration(
        data.get("heartbeatPeriod", "5m"), "heartbeatPeriod", minimum=MIN_HEARTBEAT
    )
    namespace = data.get("eventNamespace", DEFAULT_NAMESPACE)
    namespace = _word(namespace, "eventNamespace") if namespace != "" else ""
    config = AgentConfig(
        checks,
        heartbeat,
        namespace or DEFAULT_NAMESPACE,
        parse_address(data.get("metrics", DEFAULT_METRICS), "metrics"),
        parse_address(data.get("server", DEFAULT_SERVER), "server"),
    )
    if data.get("remediation") is not None:
        from healthcheck._agent.remediation.config import parse_remediation

        config.remediation = parse_remediation(data["remediation"], checks)
    try:
        config.traffic = parse_traffic(data)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config


def _strict_loader():
    """PyYAML's SafeLoader, stricter where a config file can hurt us.

    A key given twice is an error, not "last one wins". Aliases (``*name``) are refused: a few
    hundred bytes of nested aliases expand into billions of nodes for whatever walks the
    result. Nesting deeper than :data:`MAX_DEPTH` is refused before PyYAML's recursive
    composer runs out of stack.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        _depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are not supported in the agent config",
                    self.peek_event().start_mark,
                )
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"nested deeper than {MAX_DEPTH} levels",
                        self.peek_event().start_mark,
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, str):
                    continue  # unhashable keys are the base class's error to report
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {short_repr(key, 100)} given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def _read_config(path: str, shown: str) -> bytes:
    """At most ``MAX_CONFIG_BYTES + 1`` bytes of the regular file at ``path``.

    Opened non-blocking and checked with ``fstat`` before any read: a FIFO at the path would
    otherwise hang ``--check-config`` until something writes to it. A symbolic link is followed
    (a ConfigMap mount is a chain of them); only what it ends at must be a regular file.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(f"{shown}: cannot read: not a regular file")
        chunks, remaining = [], MAX_CONFIG_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def load_config(path: str, catalog) -> AgentConfig:
    """Read, decode and validate the YAML file at ``path``."""
    import yaml

    shown = one_line(path, 200)  # argv: echoed in every error below
    text = _read_config(path, shown)
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{shown}:{where}: {one_line(problem, 200)}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # What PyYAML's constructors let through: an integer of 5,000 digits, a timestamp
        # such as 2001-02-30, a binary value that is not base64.
        raise ConfigError(f"{shown}: cannot decode: {describe_error(exc, 200)}") from None
    try:
        return parse_config(data, catalog)
    except ConfigError as exc:
        raise ConfigError(f"{shown}: {exc}") from None
