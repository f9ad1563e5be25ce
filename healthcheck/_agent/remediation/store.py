"""Where remediation keeps its state: the Node as last read, and per-rule states.

The real states live on the Node (the :data:`~.node.ANNOTATION` record) and are written in the
same conditional merge patch as the change they describe; a dry-run rule's state lives here,
in memory, since a dry run writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from healthcheck._agent.clock import Clock
from healthcheck._agent.kube import ApiError
from healthcheck._agent.remediation import rules as r
from healthcheck._agent.remediation.api import RemediationApi
from healthcheck._agent.remediation.config import Rule
from healthcheck._agent.remediation.node import NodeView, patch_body


class Conflict(Exception):
    """The Node changed between our read and our write: read it again and decide afresh."""


class NodeStore:
    """The Node and the rule states of one node; ``is_dry(rule)`` picks memory or the Node."""

    def __init__(
        self, api: RemediationApi, node: str, clock: Clock, is_dry: Callable[[Rule], bool]
    ) -> None:
        self.api = api
        self.node = node
        self.clock = clock
        self.is_dry = is_dry
        self.view: NodeView | None = None
        self.polled = 0.0  # monotonic time of the last read
        # What a dry run would have written on the Node: its states and whether it would
        # have cordoned (so its undo says what the real one would do, e.g. not uncordon an
        # operator's cordon).
        self.dry = r.Record()

    def read(self) -> NodeView:
        self.view = NodeView(self.api.get_node(self.node))
        self.polled = self.clock.monotonic()
        return self.view

    def current(self) -> NodeView:
        """The Node as last read: the controller reads it before anything is written."""
        if self.view is None:
            raise RuntimeError("the Node has not been read yet")
        return self.view

    def state(self, rule: Rule) -> r.RuleState | None:
        if self.is_dry(rule):
            return self.dry.rules.get(rule.name)
        return self.view.record.rules.get(rule.name) if self.view else None

    def record(self, rule: Rule) -> r.Record:
        """The record ``rule``'s states live in: the Node's, or the dry run's in memory."""
        return self.dry if self.is_dry(rule) else self.current().record

    def _patch(self, record: r.Record, **changes: Any) -> None:
        body = patch_body(self.current(), record, **changes)
        try:
            node = self.api.patch_node(self.node, body)
        except ApiError as exc:
            if exc.status == 409:
                raise Conflict() from None
            raise
        self.view = NodeView(node) if node else self.read()

    def disown_cordon(self) -> None:
        """Record that the cordon is no longer ours (someone uncordoned the node)."""
        record = self.current().record.copy()
        record.cordoned = False
        self._patch(record)

    def save(self, rule: Rule, state: r.RuleState | None, **changes: Any) -> None:
        """Write ``state`` for ``rule`` (with node ``changes``), or keep it in memory when dry."""
        dry = self.is_dry(rule)
        record = self.dry if dry else self.current().record.copy()
        if state is None:
            record.rules.pop(rule.name, None)
        else:
            record.rules[rule.name] = state
        if changes.get("unschedulable") is True:
            record.cordoned = True
        elif changes.get("unschedulable") is False:
            record.cordoned = False
        if not dry:
            self._patch(record, **changes)
