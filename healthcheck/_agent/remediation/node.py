"""Reading the Node, and the merge patches that taint, cordon and undo them.

Every patch carries the Node's ``resourceVersion``, so it applies only to the node as we read
it (409 otherwise, and the controller re-reads): an operator's cordon made a moment earlier is
never mistaken for ours. The record of what *we* did (:class:`~.rules.Record`) travels in the
same patch as the change it describes, in the annotation :data:`ANNOTATION`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from healthcheck._agent.clock import parse_rfc3339
from healthcheck._agent.remediation.api import json_object
from healthcheck._agent.remediation.rules import ABSENT, Record

ANNOTATION = "remediation.node-healthcheck.io/state"
MAX_TAINTS = 256


class NodeView:
    """The parts of a Node object remediation reads, defensively typed."""

    def __init__(self, node: dict[str, Any]) -> None:
        meta = json_object(node.get("metadata"))
        spec = json_object(node.get("spec"))
        status = json_object(node.get("status"))
        annotations = meta.get("annotations")
        self.annotations: dict[str, Any] = annotations if isinstance(annotations, dict) else {}
        self.resource_version = meta.get("resourceVersion")
        self.created = parse_rfc3339(meta.get("creationTimestamp"))
        self.unschedulable = spec.get("unschedulable") is True
        taints = spec.get("taints")
        self.taints: list[dict[str, Any]] = (
            [t for t in taints[:MAX_TAINTS] if isinstance(t, dict)]
            if isinstance(taints, list)
            else []
        )
        self.conditions: dict[str, tuple[str, float]] = {}
        for item in status.get("conditions") or ():
            if isinstance(item, dict) and isinstance(item.get("type"), str):
                since = parse_rfc3339(item.get("lastTransitionTime")) or 0.0
                self.conditions[item["type"]] = (str(item.get("status") or ""), since)
        self.record = Record.loads(self.annotations.get(ANNOTATION))

    def condition(self, ctype: str) -> tuple[str, float]:
        """``(status, lastTransitionTime)``; :data:`~.rules.ABSENT` when the type is missing."""
        return self.conditions.get(ctype, (ABSENT, 0.0))

    def has_taint(self, key: str) -> bool:
        return any(t.get("key") == key for t in self.taints)


def patch_body(
    view: NodeView,
    record: Record,
    *,
    add_taints: Iterable[str] = (),
    remove_taints: Iterable[str] = (),
    unschedulable: bool | None = None,
) -> dict[str, Any]:
    """The merge patch: taints added/removed, cordon set/cleared, the record written."""
    body: dict[str, Any] = {
        "metadata": {
            "resourceVersion": view.resource_version,
            "annotations": {ANNOTATION: record.dumps()},
        }
    }
    spec: dict[str, Any] = {}
    if add_taints or remove_taints:
        add_taints = tuple(add_taints)
        gone = set(remove_taints) | set(add_taints)
        taints = [t for t in view.taints if t.get("key") not in gone]
        taints += [{"key": key, "effect": "NoSchedule"} for key in add_taints]
        spec["taints"] = taints or None
    if unschedulable is True:
        spec["unschedulable"] = True
    elif unschedulable is False:
        spec["unschedulable"] = None  # as kubectl uncordon leaves it: the field gone
    if spec:
        body["spec"] = spec
    return body
