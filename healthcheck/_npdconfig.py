"""NPD custom-plugin-monitor JSON from checker declarations (spec section 2.9).

A checker either lists its own :class:`~healthcheck.NpdMonitor` files (the health-checker and
log-counter compatibility configs do) or gets one derived from its declaration.
"""

from __future__ import annotations

import json
import os

from healthcheck._declaration import Checker, NpdMonitor, NpdRule
from healthcheck._protocol import DEFAULT_MAX_OUTPUT_LENGTH
from healthcheck.sdk.duration import format_duration, parse_duration

DEFAULT_COMMAND = "/usr/local/bin/healthcheck"
# Our own deadline must fire before NPD's SIGKILL so NPD sees a clean UNKNOWN line, and the
# interpreter needs a moment to start.
NPD_TIMEOUT_MARGIN = 2.0


def default_monitor(checker: Checker) -> NpdMonitor:
    """The NPD monitor for a checker that does not declare its own."""
    timeout = checker.timeout + NPD_TIMEOUT_MARGIN
    return NpdMonitor(
        f"healthcheck-{checker.name}.json",
        source=f"healthcheck-{checker.name}",
        rules=[NpdRule(checker.condition, ("check", checker.name), timeout=timeout)],
        interval=checker.interval,
        timeout=timeout,
    )


def monitors_of(checker: Checker) -> tuple[NpdMonitor, ...]:
    """The NPD monitor files ``npd-config`` writes for ``checker``."""
    return checker.npd_monitors or (default_monitor(checker),)


def monitor_document(monitor: NpdMonitor, command: str = DEFAULT_COMMAND) -> dict:
    """The JSON object NPD's custom plugin monitor reads, for one monitor file.

    ``command`` is the path of the ``healthcheck`` script; rules that name another program
    (``health-checker``, ``log-counter``) find it in the same directory.
    """
    bindir = os.path.dirname(command)
    conditions: dict[str, dict] = {}
    rules = []
    for rule in monitor.rules:
        cond = rule.condition
        path = command if rule.program is None else os.path.join(bindir, rule.program)
        doc: dict[str, object] = {"type": "permanent" if cond.permanent else "temporary"}
        if cond.permanent:
            doc["condition"] = cond.type
            conditions.setdefault(
                cond.type,
                {"type": cond.type, "reason": cond.healthy_reason, "message": cond.healthy_message},
            )
        doc["reason"] = cond.reason
        doc["path"] = path
        doc["args"] = list(rule.args)
        doc["timeout"] = format_duration(min(rule.timeout or monitor.timeout, monitor.timeout))
        rules.append(doc)
    return {
        "plugin": "custom",
        "pluginConfig": {
            "invoke_interval": format_duration(monitor.interval),
            "timeout": format_duration(monitor.timeout),
            "max_output_length": DEFAULT_MAX_OUTPUT_LENGTH,
            "concurrency": monitor.concurrency,
            "enable_message_change_based_condition_update": False,
        },
        "source": monitor.source,
        "metricsReporting": True,
        "conditions": list(conditions.values()),
        "rules": rules,
    }


def render(document: dict) -> str:
    """The file text: two-space indent and a final newline, as NPD's shipped configs."""
    return json.dumps(document, indent=2) + "\n"


def validate_document(doc: dict, check_paths: bool = False) -> list[str]:
    """Problems NPD's ``Validate`` would report for ``doc`` (empty when it would load it)."""
    problems = []
    if doc.get("plugin") != "custom":
        problems.append(f'plugin must be "custom", not {doc.get("plugin")!r}')
    cfg = doc.get("pluginConfig", {})
    try:
        interval = parse_duration(cfg.get("invoke_interval", "30s"))
        global_timeout = parse_duration(cfg.get("timeout", "5s"))
    except ValueError as exc:
        return [*problems, str(exc)]
    if interval <= 0:
        problems.append("invoke_interval must be > 0")
    defaults = {c.get("type") for c in doc.get("conditions", [])}
    for rule in doc.get("rules", []):
        try:
            timeout = parse_duration(rule.get("timeout", cfg.get("timeout", "5s")))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if timeout > global_timeout:
            problems.append(f"rule {rule.get('reason')}: timeout exceeds the global timeout")
        if rule.get("type") == "permanent" and rule.get("condition") not in defaults:
            problems.append(
                f"permanent problem {rule.get('condition')} does not have preset default condition"
            )
        if check_paths and not os.path.exists(rule.get("path", "")):
            problems.append(f"rule path {rule.get('path')!r} does not exist")
    return problems


def write_configs(names, output_dir: str, command: str = DEFAULT_COMMAND) -> list[str]:
    """Write the NPD files of the named checkers (all when ``names`` is empty); return paths.

    Each file is replaced atomically (:func:`healthcheck.sdk.safefile.replace_file`). Raises
    ``LookupError`` naming an unknown checker before anything is written, ``OSError`` when a
    file cannot be written.
    """
    from healthcheck import _host as host

    catalog = host.discover()
    if names:
        missing = [n for n in names if n not in catalog.checkers]
        if missing:
            from healthcheck.sdk.text import one_line

            known = ", ".join(sorted(catalog.checkers))
            name = one_line(missing[0], 80, marker="…")  # argv: one bounded line
            raise LookupError(f"unknown checker '{name}' (available: {known})")
        selected = [catalog.checkers[n].checker for n in names]
    else:
        selected = [c.checker for c in catalog]
    from healthcheck.sdk.safefile import replace_file

    os.makedirs(output_dir, exist_ok=True)
    written = []
    for checker in selected:
        for monitor in monitors_of(checker):
            path = os.path.join(output_dir, monitor.filename)
            # Atomic, and a link planted at the name is replaced, not followed: NPD never reads
            # half a file, and root never writes through someone else's symlink.
            replace_file(path, render(monitor_document(monitor, command)).encode(), 0o644)
            written.append(path)
    return written
