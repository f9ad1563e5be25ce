"""Glue between the agent and remediation: build the controller from a running agent, and turn
its state into the entry ``/conditions`` shows.

The agent calls :func:`start` once (long-running mode only) and feeds every check report to
``controller.observe``; nothing else of the agent knows about remediation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from healthcheck._agent.conditions import ConditionTable
from healthcheck._agent.config import AgentConfig, CheckSpec
from healthcheck._agent.kube import load_client_config
from healthcheck._agent.remediation.actions import Descriptions, Repairs
from healthcheck._agent.remediation.api import RemediationApi
from healthcheck._agent.remediation.controller import Controller, Own
from healthcheck._agent.remediation.metrics import RemediationMetrics
from healthcheck._declaration import CheckContext, Checker, Options
from healthcheck.sdk import repair as policy

if TYPE_CHECKING:  # main imports this module, when remediation is configured
    from healthcheck._agent.main import Agent

CONDITIONS_TYPE = "NodeHealthcheckRemediation"

_log = logging.getLogger(__name__)


def _own(table: ConditionTable, owned: set[str]) -> Own:
    """``own(ctype)`` for the controller, from the agent's condition table."""

    def own(ctype: str) -> tuple[str | None, float] | None:
        if ctype not in owned:
            return None
        cond = table.get(ctype)
        return (None, 0.0) if cond is None else (cond.status, cond.transition)

    return own


def _repair_of(
    spec: CheckSpec, checker: Checker, repair: policy.Repair
) -> tuple[Callable[[], str | None], Callable[[], str]]:
    """``(run, describe)`` of one check's repair, each with a fresh context and deadline."""

    def context() -> CheckContext:
        values = spec.options.as_dict() if spec.options is not None else {}
        # Switched off inline by the config: here it runs. A fresh Options holds exactly the
        # names given, so the flag is one of them even for a checker that does not declare it.
        options = Options(**{**values, "enable_repair": True})
        return CheckContext(checker.name, options, time.monotonic() + spec.timeout)

    def run() -> str | None:
        return policy.apply(checker.name, context(), repair)

    def describe() -> str:
        return str(repair.describe(context()))

    return run, describe


def _repairs(config: AgentConfig) -> tuple[Repairs, Descriptions]:
    """For each condition a ``repair`` rule names: run the check's repair through the shared
    policy (cooldown, dry-run-repair), and describe it."""
    runs: Repairs = {}
    describes: Descriptions = {}
    rules = config.remediation.rules if config.remediation is not None else []
    wanted = {rule.condition for rule in rules if "repair" in rule.actions}
    for spec in config.condition_types():
        checker = spec.checker
        # the config refuses a repair rule whose check declares no repair
        if spec.condition not in wanted or checker is None or checker.repair is None:
            continue
        runs[spec.condition], describes[spec.condition] = _repair_of(spec, checker, checker.repair)
    return runs, describes


def start(agent: Agent, kubeconfig: str | None, *, dry_run: bool) -> Controller | None:
    """Start the remediation loop of ``agent``; ``None`` when it cannot run (logged)."""
    config = agent.config
    remediation = config.remediation
    if remediation is None:
        return None
    try:
        api = RemediationApi(load_client_config(kubeconfig))
    except ValueError as exc:
        if not dry_run:
            raise
        _log.warning("remediation off in this dry run: %s", exc)
        return None
    metrics = None
    if agent.metrics is not None:
        metrics = RemediationMetrics(agent.metrics.registry, remediation.rules)
    runs, describes = _repairs(config)
    controller = Controller(
        remediation,
        api,
        agent.reporter.node,
        emit=lambda event: agent.reporter.record([event]),
        clock=agent.clock,
        own=_own(agent.table, {spec.condition for spec in config.condition_types()}),
        repairs=runs,
        describe_repair=describes,
        dry_run=dry_run,
        metrics=metrics,
    )
    budget = (
        f"{remediation.max_percent:g}% of the nodes"
        if remediation.max_percent is not None
        else str(remediation.max_concurrent)
    )
    _log.info(
        "remediation: %d rule(s), at most %s node(s) at once%s",
        len(remediation.rules),
        budget,
        " (dry run)" if controller.dry_run else "",
    )
    controller.start()
    return controller


def conditions_entry(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The remediation state as one ``/conditions`` entry (not a NodeCondition on the Node):
    ``True`` while a rule is active or waiting, the phase as reason, the details under
    ``remediation``."""
    active = [r for r in snapshot["rules"] if r.get("phase") not in ("idle", "pending")]
    if snapshot.get("waiting"):
        reason = "WaitingForSlot"
    elif active:
        reason = "Remediating"
    else:
        reason = "Idle"
    parts = [f"{r['name']}: {r['phase']}" for r in snapshot["rules"]]
    if snapshot.get("slot"):
        parts.append(f"slot {snapshot['slot']}")
    return {
        "type": CONDITIONS_TYPE,
        "status": "True" if active or snapshot.get("waiting") else "False",
        "reason": reason,
        "message": "; ".join(parts),
        "remediation": snapshot,
    }
