"""Glue between the agent and remediation: build the controller from a running agent, and turn
its state into the entry ``/conditions`` shows.

The agent calls :func:`start` once (long-running mode only) and feeds every check report to
``controller.observe``; nothing else of the agent knows about remediation.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from healthcheck._agent.kube import load_client_config
from healthcheck._agent.remediation.api import RemediationApi
from healthcheck._agent.remediation.controller import Controller

if TYPE_CHECKING:  # main imports this module, when remediation is configured
    from healthcheck._agent.main import Agent

CONDITIONS_TYPE = "NodeHealthcheckRemediation"

_log = logging.getLogger(__name__)


def _own(table, owned: set[str]):
    """``own(ctype)`` for the controller, from the agent's condition table."""

    def own(ctype: str):
        if ctype not in owned:
            return None
        cond = table.get(ctype)
        return (None, 0.0) if cond is None else (cond.status, cond.transition)

    return own


def _repairs(config) -> tuple[dict, dict]:
    """For each condition a ``repair`` rule names: run the check's repair through the shared
    policy (cooldown, dry-run-repair), and describe it."""
    from healthcheck._declaration import CheckContext, Options
    from healthcheck.sdk import repair as policy

    runs, describes = {}, {}
    wanted = {rule.condition for rule in config.remediation.rules if "repair" in rule.actions}
    for spec in config.condition_types():
        if spec.condition not in wanted:
            continue

        def context(spec=spec):
            options = Options(**spec.options.as_dict())
            options.enable_repair = True  # switched off inline by the config: here it runs
            return CheckContext(spec.checker.name, options, time.monotonic() + spec.timeout)

        def run(spec=spec, context=context):
            return policy.apply(spec.checker.name, context(), spec.checker.repair)

        def describe(spec=spec, context=context):
            return spec.checker.repair.describe(context())

        runs[spec.condition] = run
        describes[spec.condition] = describe
    return runs, describes


def start(agent: Agent, kubeconfig: str | None, *, dry_run: bool) -> Controller | None:
    """Start the remediation loop of ``agent``; ``None`` when it cannot run (logged)."""
    config = agent.config
    try:
        api = RemediationApi(load_client_config(kubeconfig))
    except ValueError as exc:
        if not dry_run:
            raise
        _log.warning("remediation off in this dry run: %s", exc)
        return None
    metrics = None
    if agent.metrics is not None:
        from healthcheck._agent.remediation.metrics import RemediationMetrics

        metrics = RemediationMetrics(agent.metrics.registry, config.remediation.rules)
    runs, describes = _repairs(config)
    controller = Controller(
        config.remediation,
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
        f"{config.remediation.max_percent:g}% of the nodes"
        if config.remediation.max_percent is not None
        else str(config.remediation.max_concurrent)
    )
    _log.info(
        "remediation: %d rule(s), at most %s node(s) at once%s",
        len(config.remediation.rules),
        budget,
        " (dry run)" if controller.dry_run else "",
    )
    controller.start()
    return controller


def conditions_entry(snapshot: dict) -> dict:
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
