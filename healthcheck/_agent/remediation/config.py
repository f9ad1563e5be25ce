"""The ``remediation:`` key of the agent's YAML, validated before anything runs.

::

    remediation:
      dryRun: false                  # log and record Events only, change nothing
      namespace: node-healthcheck-remediation   # where the slot Leases live
      maxConcurrent: 1               # nodes remediating at once, cluster-wide; or "10%"
      minInterval: 1m                # between two starts anywhere in the fleet
      nodeGrace: 2m                  # leave nodes younger than this alone
      leaseDuration: 60s             # a dead holder's slot frees after this
      pollInterval: 30s              # how often the Node is read for other reporters' conditions
      drain: {timeout: 10m, maxGracePeriod: 60s, deleteEmptyDirData: false, force: false}
      rules:
        - name: maintenance
          when: {condition: MaintenanceScheduled, status: "True", for: 0s}
          actions: [taint, cordon, drain]
          leadTime: 30m
          minHold: 5m
        - when: {condition: KubeletUnhealthy, for: 2m}
          actions: [repair]
          repairHold: 3h

Every error is a :class:`~healthcheck._agent.config.ConfigError` whose one line names the key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from healthcheck._agent.config import CheckSpec, ConfigError
from healthcheck.sdk.duration import parse_duration

ACTIONS = ("taint", "cordon", "drain", "repair")
STATUSES = ("True", "False", "Unknown")
TAINT_DOMAIN = "remediation.node-healthcheck.io"
MAX_RULES = 32
MAX_NAME = 63
MAX_DURATION = 30 * 86400.0  # a month: longer is a typo, and keeps timestamps sane
MAX_CONCURRENT = 10_000
ROOT_KEYS = (
    "dryRun",
    "namespace",
    "maxConcurrent",
    "minInterval",
    "nodeGrace",
    "leaseDuration",
    "pollInterval",
    "drain",
    "rules",
)
DRAIN_KEYS = ("timeout", "maxGracePeriod", "deleteEmptyDirData", "force")
RULE_KEYS = (
    "name",
    "when",
    "actions",
    "leadTime",
    "minHold",
    "dryRun",
    "repairHold",
    "repairVerify",
)
WHEN_KEYS = ("condition", "status", "for")
# A condition type is a Kubernetes "qualified name" here, since it becomes a taint key's name.
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


@dataclass(frozen=True, slots=True)
class DrainOptions:
    """How ``drain`` evicts: the overall timeout, the grace period cap, kubectl's two opt-ins."""

    timeout: float = 600.0
    max_grace_period: float = 60.0
    delete_emptydir_data: bool = False
    force: bool = False


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule: when ``condition`` has had ``status`` for ``for_`` seconds, do ``actions``."""

    name: str
    condition: str
    actions: tuple[str, ...]
    _: KW_ONLY
    status: str = "True"
    for_: float = 0.0
    lead_time: float = 0.0
    min_hold: float = 300.0
    dry_run: bool = False
    repair_hold: float = 3 * 3600.0
    repair_verify: float = 120.0

    @property
    def taint_key(self) -> str:
        """Our own NoSchedule taint key for this rule's condition."""
        return f"{TAINT_DOMAIN}/{self.condition}"

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, {self.condition}={self.status}, {list(self.actions)})"


@dataclass(frozen=True, slots=True)
class RemediationConfig:
    """The validated ``remediation:`` section (``None`` in :class:`AgentConfig` when absent)."""

    rules: list[Rule]
    _: KW_ONLY
    dry_run: bool = False
    namespace: str = "node-healthcheck-remediation"
    max_concurrent: int = 1
    max_percent: float | None = None
    min_interval: float = 60.0
    node_grace: float = 120.0
    lease_duration: float = 60.0
    poll_interval: float = 30.0
    drain: DrainOptions = field(default_factory=DrainOptions)


# ------------------------------------------------------------------------------ field readers


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", str: "a string"}
    return kinds.get(type(value), "null")


def _mapping(value: object, key: str, known: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping, got {_kind(value)}")
    for name in value:
        if name not in known:
            raise ConfigError(f"{key}.{name}: unknown key (known: {', '.join(known)})")
    return value


def _bool(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}: expected true or false, got {_kind(value)}")
    return value


def _seconds(value: object, key: str, *, allow_zero: bool = True) -> float:
    if not isinstance(value, str):
        raise ConfigError(f'{key}: expected a duration string such as "30s", got {_kind(value)}')
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ConfigError(f'{key}: duration "{value}" must be {">=" if allow_zero else ">"} 0')
    if seconds > MAX_DURATION:
        raise ConfigError(f'{key}: duration "{value}" is longer than 30 days')
    return float(seconds)


def _name(value: object, key: str, pattern: re.Pattern[str] = _NAME) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{key}: expected a string, got {_kind(value)}")
    if not 0 < len(value) <= MAX_NAME or not pattern.match(value):
        raise ConfigError(
            f"{key}: {value[: MAX_NAME + 1]!r} is not a valid name (1-63 letters, digits, '-', "
            "'_' or '.', starting and ending with a letter or digit)"
        )
    return value


def _max_concurrent(value: object, key: str) -> tuple[int, float | None]:
    """``(absolute, None)`` or ``(0, percent)`` from ``2`` or ``"10%"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_CONCURRENT:
            raise ConfigError(f"{key}: {value} must be between 1 and {MAX_CONCURRENT}")
        return value, None
    if isinstance(value, str) and value.endswith("%"):
        try:
            percent = float(value[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            raise ConfigError(f'{key}: "{value}" must be a percentage above 0% and at most 100%')
        return 0, percent
    raise ConfigError(f'{key}: expected a number of nodes (2) or a percentage ("10%")')


# ------------------------------------------------------------------------------------ parsing


def _rule(raw: Any, index: int, owned: dict[str, CheckSpec]) -> Rule:
    key = f"remediation.rules[{index}]"
    raw = _mapping(raw, key, RULE_KEYS)
    if "when" not in raw:
        raise ConfigError(f"{key}.when: required (e.g. {{condition: MaintenanceScheduled}})")
    when = _mapping(raw["when"], f"{key}.when", WHEN_KEYS)
    if "condition" not in when:
        raise ConfigError(f"{key}.when.condition: required (a node condition type)")
    condition = _name(when["condition"], f"{key}.when.condition")
    status = when.get("status", "True")
    if status not in STATUSES:
        raise ConfigError(f'{key}.when.status: {status!r} is not "True", "False" or "Unknown"')
    actions = raw.get("actions")
    if not isinstance(actions, list) or not actions:
        raise ConfigError(f"{key}.actions: expected a non-empty list of {', '.join(ACTIONS)}")
    for i, action in enumerate(actions):
        if action not in ACTIONS:
            raise ConfigError(f"{key}.actions[{i}]: {action!r} is not one of {', '.join(ACTIONS)}")
        if action in actions[:i]:
            raise ConfigError(f"{key}.actions[{i}]: {action!r} given twice")
    if "drain" in actions and "cordon" not in actions:
        raise ConfigError(f"{key}.actions: drain needs cordon too (else pods come straight back)")
    if "repair" in actions:
        spec = owned.get(condition)
        if spec is None or spec.checker is None or spec.checker.repair is None:
            raise ConfigError(
                f"{key}.actions: repair needs a check in checks[] that reports {condition} "
                "and declares a repair (kubelet, kube-proxy, docker, cri)"
            )
    name = _name(raw.get("name", condition), f"{key}.name")
    # Actions run in a fixed order whatever the list says: mark, cordon, evict, then repair.
    ordered = tuple(a for a in ACTIONS if a in actions)
    return Rule(
        name,
        condition,
        ordered,
        status=status,
        for_=_seconds(when.get("for", "0s"), f"{key}.when.for"),
        lead_time=_seconds(raw.get("leadTime", "0s"), f"{key}.leadTime"),
        min_hold=_seconds(raw.get("minHold", "5m"), f"{key}.minHold"),
        dry_run=_bool(raw.get("dryRun", False), f"{key}.dryRun"),
        repair_hold=_seconds(raw.get("repairHold", "3h"), f"{key}.repairHold"),
        repair_verify=_seconds(
            raw.get("repairVerify", "2m"), f"{key}.repairVerify", allow_zero=False
        ),
    )


def parse_remediation(raw: Any, checks: Iterable[CheckSpec]) -> RemediationConfig | None:
    """Validate the ``remediation:`` value; ``None`` (remediation off) when absent or null.

    ``checks`` are the agent's validated :class:`~healthcheck._agent.config.CheckSpec` list: a
    ``repair`` action needs the check that owns the condition. The inline repair of such a
    check is switched off here, so that it runs only through the fleet budget.
    """
    if raw is None:
        return None
    raw = _mapping(raw, "remediation", ROOT_KEYS)
    owned: dict[str, CheckSpec] = {}
    for spec in checks:
        if spec.permanent and spec.condition not in owned:
            owned[spec.condition] = spec
    raw_rules = raw.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError("remediation.rules: expected a non-empty list of rules")
    if len(raw_rules) > MAX_RULES:
        raise ConfigError(f"remediation.rules: at most {MAX_RULES} rules")
    rules = [_rule(r, i, owned) for i, r in enumerate(raw_rules)]
    seen: dict[tuple[str, str], int] = {}
    for i, rule in enumerate(rules):
        for what, value in (("name", rule.name), ("when.condition", rule.condition)):
            if (what, value) in seen:
                raise ConfigError(
                    f"remediation.rules[{i}].{what}: {value!r} is already used by "
                    f"rules[{seen[(what, value)]}]"
                )
            seen[(what, value)] = i
    for rule in rules:
        if "repair" in rule.actions:
            # Only behind the budget: the scheduler runs this check without its inline repair.
            spec = owned[rule.condition]
            spec.repair_inline = False
            options: Any = spec.options
            if options is not None and hasattr(type(options), "enable_repair"):
                # A checker that declares the flag also reports it (the component checks'
                # "repair flag : false"); one without it is held by repair_inline alone.
                options.enable_repair = False
    drain_raw = _mapping(raw.get("drain", {}), "remediation.drain", DRAIN_KEYS)
    drain = DrainOptions(
        timeout=_seconds(
            drain_raw.get("timeout", "10m"), "remediation.drain.timeout", allow_zero=False
        ),
        max_grace_period=_seconds(
            drain_raw.get("maxGracePeriod", "60s"), "remediation.drain.maxGracePeriod"
        ),
        delete_emptydir_data=_bool(
            drain_raw.get("deleteEmptyDirData", False), "remediation.drain.deleteEmptyDirData"
        ),
        force=_bool(drain_raw.get("force", False), "remediation.drain.force"),
    )
    absolute, percent = _max_concurrent(raw.get("maxConcurrent", 1), "remediation.maxConcurrent")
    lease = _seconds(raw.get("leaseDuration", "60s"), "remediation.leaseDuration", allow_zero=False)
    if lease < 1:
        raise ConfigError("remediation.leaseDuration: must be at least 1s (Leases count seconds)")
    return RemediationConfig(
        rules,
        dry_run=_bool(raw.get("dryRun", False), "remediation.dryRun"),
        namespace=_name(
            raw.get("namespace", "node-healthcheck-remediation"),
            "remediation.namespace",
            _DNS_LABEL,
        ),
        max_concurrent=absolute,
        max_percent=percent,
        min_interval=_seconds(raw.get("minInterval", "1m"), "remediation.minInterval"),
        node_grace=_seconds(raw.get("nodeGrace", "2m"), "remediation.nodeGrace"),
        lease_duration=lease,
        poll_interval=_seconds(
            raw.get("pollInterval", "30s"), "remediation.pollInterval", allow_zero=False
        ),
        drain=drain,
    )
