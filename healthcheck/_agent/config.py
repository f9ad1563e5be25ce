"""The agent's YAML configuration, validated strictly before anything runs.

Every error is a :class:`ConfigError` with one line that names the key (``checks[2].interval``)
and what is wrong with it; the CLI prints it and exits 2. One entry of ``checks`` is
:mod:`healthcheck._agent.checker_config`'s.

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
from collections.abc import Mapping
from typing import Any

# ConfigError and CheckSpec are re-exported: callers know them from here.
from healthcheck._agent.checker_config import (  # noqa: F401
    DEFAULT_PLUGIN_INTERVAL,
    DEFAULT_PLUGIN_TIMEOUT,
    duration,
    expect,
    key_name,
    parse_check,
    word,
)
from healthcheck._agent.checker_config import (
    CheckSpec as CheckSpec,
)
from healthcheck._agent.checker_config import (
    ConfigError as ConfigError,
)
from healthcheck._agent.traffic import KEYS as TRAFFIC_KEYS
from healthcheck._agent.traffic import TrafficSettings, parse_traffic
from healthcheck._protocol import describe_error
from healthcheck.sdk.text import one_line, short_repr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from healthcheck._agent.remediation.config import RemediationConfig
    from healthcheck._declaration import Checker

DEFAULT_HEARTBEAT = 300.0
DEFAULT_METRICS = "127.0.0.1:20257"
DEFAULT_SERVER = "127.0.0.1:20256"
DEFAULT_NAMESPACE = "default"
MAX_CONFIG_BYTES = 1 << 20
# The config nests four levels (checks, a check, its options, an option's list); anything
# much deeper is not a config, and PyYAML's composer recurses once per level.
MAX_DEPTH = 16
MIN_HEARTBEAT = 1.0  # at most one heartbeat PATCH a second

TOP_KEYS = (
    "checks",
    "heartbeatPeriod",
    "eventNamespace",
    "metrics",
    "server",
    "remediation",
    *TRAFFIC_KEYS,
)


class AgentConfig:
    """The whole validated configuration."""

    def __init__(
        self,
        checks: list[CheckSpec],
        heartbeat: float,
        namespace: str,
        metrics: tuple[str, int] | None,
        server: tuple[str, int] | None,
    ) -> None:
        self.checks: list[CheckSpec] = checks
        self.heartbeat: float = heartbeat
        self.namespace: str = namespace
        self.metrics: tuple[str, int] | None = metrics
        self.server: tuple[str, int] | None = server
        self.remediation: RemediationConfig | None = None  # when configured
        self.traffic = TrafficSettings()  # rate limit and spread (healthcheck._agent.traffic)

    def condition_types(self) -> list[CheckSpec]:
        """The first permanent check of each condition type, in config order."""
        seen: dict[str, CheckSpec] = {}
        for spec in self.checks:
            if spec.permanent and spec.condition not in seen:
                seen[spec.condition] = spec
        return list(seen.values())


def parse_address(value: object, key: str) -> tuple[str, int] | None:
    """``host:port`` (IPv6 as ``[::1]:port``); an empty string disables the listener."""
    text: str = expect(value, str, key)
    if text == "":
        return None
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    # ASCII digits only: "²" passes str.isdigit() and then fails int().
    ok = sep and host and port.isascii() and port.isdigit() and len(port) <= 5
    if not ok or not 0 <= int(port) <= 65535 or not host.isprintable():
        raise ConfigError(f'{key}: "{one_line(text, 100)}" is not host:port (e.g. 127.0.0.1:20257)')
    return host, int(port)


def parse_config(data: object, catalog: Mapping[str, Checker]) -> AgentConfig:
    """Validate the decoded YAML ``data`` against ``catalog`` (checker name -> Checker)."""
    if data is None:
        data = {}
    doc: dict[Any, Any] = expect(data, dict, "config")
    for name in doc:
        if name not in TOP_KEYS:
            raise ConfigError(f"{key_name(name)}: unknown key (known: {', '.join(TOP_KEYS)})")
    raw_checks = expect(doc.get("checks", []), list, "checks")
    checks = [parse_check(raw, i, catalog) for i, raw in enumerate(raw_checks)]
    names: dict[str, int] = {}
    for i, spec in enumerate(checks):
        if spec.name in names:
            raise ConfigError(
                f"checks[{i}].name: {spec.name!r} is already used by checks[{names[spec.name]}]; "
                "give one of them a distinct 'name'"
            )
        names[spec.name] = i
    heartbeat = duration(doc.get("heartbeatPeriod", "5m"), "heartbeatPeriod", minimum=MIN_HEARTBEAT)
    namespace = doc.get("eventNamespace", DEFAULT_NAMESPACE)
    namespace = word(namespace, "eventNamespace") if namespace != "" else ""
    config = AgentConfig(
        checks,
        heartbeat,
        namespace or DEFAULT_NAMESPACE,
        parse_address(doc.get("metrics", DEFAULT_METRICS), "metrics"),
        parse_address(doc.get("server", DEFAULT_SERVER), "server"),
    )
    if doc.get("remediation") is not None:
        from healthcheck._agent.remediation.config import parse_remediation

        config.remediation = parse_remediation(doc["remediation"], checks)
    try:
        config.traffic = parse_traffic(doc)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return config


def _strict_loader() -> Any:
    """PyYAML's SafeLoader, stricter where a config file can hurt us.

    A key given twice is an error, not "last one wins". Aliases (``*name``) are refused: a few
    hundred bytes of nested aliases expand into billions of nodes for whatever walks the
    result. Nesting deeper than :data:`MAX_DEPTH` is refused before PyYAML's recursive
    composer runs out of stack.
    """
    import yaml  # type: ignore[import-untyped, unused-ignore]

    class StrictLoader(yaml.SafeLoader):  # type: ignore[misc, unused-ignore]
        _depth = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are not supported in the agent config",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            self._depth += 1
            try:
                if self._depth > MAX_DEPTH:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"nested deeper than {MAX_DEPTH} levels",
                        self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                    )
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
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


def load_config(path: str, catalog: Mapping[str, Checker]) -> AgentConfig:
    """Read, decode and validate the YAML file at ``path``."""
    import yaml  # type: ignore[import-untyped, unused-ignore]

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
