"""Drain: evict the node's pods through the Eviction API, as ``kubectl drain`` would.

:func:`classify` decides per pod (pure): DaemonSet pods, mirror (static) pods and pods carrying
the opt-out annotation are left alone; pods with ``emptyDir`` volumes and pods without a
controller are evicted only with ``deleteEmptyDirData`` / ``force`` (kubectl's options), else
they are *refused* and reported as left on the node. Finished pods (Succeeded/Failed) are always
evicted. A pod already terminating (ours or anyone's eviction accepted) is *waited for*: as
``kubectl drain`` does, the drain is done only when such pods are gone.

:class:`Drainer` makes passes: each pass lists the pods and evicts those whose retry time has
come, for at most ``pass_budget`` seconds (the rest wait for the next pass). A
PodDisruptionBudget refusal (429) is retried with exponential backoff per pod; the caller ends
the drain at its timeout. Grace periods are capped at ``maxGracePeriod``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from healthcheck._agent.kube import ApiError
from healthcheck._agent.remediation.api import RemediationApi, json_object
from healthcheck._agent.remediation.config import DrainOptions

OPT_OUT = "remediation.node-healthcheck.io/skip-drain"
MIRROR = "kubernetes.io/config.mirror"
DEFAULT_GRACE = 30  # the API's default terminationGracePeriodSeconds
EVICT, SKIP, REFUSE, WAIT = "evict", "skip", "refuse", "wait"


def pod_name(pod: dict[str, Any]) -> str:
    meta = json_object(pod.get("metadata"))
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _controller(meta: dict[str, Any]) -> dict[str, Any] | None:
    for ref in meta.get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller") is True:
            return ref
    return None


def classify(
    pod: dict[str, Any], *, delete_emptydir_data: bool = False, force: bool = False
) -> tuple[str, str]:
    """``(EVICT|SKIP|REFUSE|WAIT, why)`` for one pod."""
    meta = json_object(pod.get("metadata"))
    spec = json_object(pod.get("spec"))
    status = json_object(pod.get("status"))
    annotations = json_object(meta.get("annotations"))
    if MIRROR in annotations:
        return SKIP, "mirror pod"
    controller = _controller(meta)
    if controller is not None and controller.get("kind") == "DaemonSet":
        return SKIP, "DaemonSet pod"
    if str(annotations.get(OPT_OUT, "")).lower() == "true":
        return SKIP, f"opted out ({OPT_OUT})"
    if meta.get("deletionTimestamp"):
        return WAIT, "still terminating"
    if status.get("phase") in ("Succeeded", "Failed"):
        return EVICT, "finished"
    volumes = spec.get("volumes")
    volumes = volumes if isinstance(volumes, list) else []
    if not delete_emptydir_data and any(isinstance(v, dict) and "emptyDir" in v for v in volumes):
        return REFUSE, "uses emptyDir (drain.deleteEmptyDirData)"
    if controller is None and not force:
        return REFUSE, "has no controller (drain.force)"
    return EVICT, ""


def grace_seconds(pod: dict[str, Any], cap: float) -> int:
    """The pod's own grace period, capped."""
    spec = json_object(pod.get("spec"))
    own = spec.get("terminationGracePeriodSeconds")
    if not isinstance(own, int) or isinstance(own, bool) or own < 0:
        own = DEFAULT_GRACE
    return int(min(own, cap))


def pdb_of(error: ApiError) -> str:
    """The budget's name from a 429's causes ("The disruption budget NAME needs ..."), else ''."""
    causes: list[str] = getattr(error, "causes", [])
    for cause in causes:
        words = cause.split()
        if len(words) > 3 and words[:3] == ["The", "disruption", "budget"]:
            return words[3]
    return ""


class Pass:
    """What one pass found and did."""

    __slots__ = ("blocked", "complete", "errors", "evicted", "pending", "refused", "terminating")

    def __init__(self) -> None:
        self.evicted: list[str] = []
        self.blocked: dict[str, str] = {}  # pod -> PDB name (or the refusal text)
        self.refused: dict[str, str] = {}  # pod -> why it is not evicted
        self.errors: dict[str, str] = {}
        self.pending: list[str] = []  # evictable pods still there (blocked, failing, backing off)
        self.terminating: list[str] = []  # evicted (by anyone), not gone yet
        self.complete = True  # False when the node had more pods than one pass lists

    @property
    def finished(self) -> bool:
        """Every pod we may evict is gone; refused pods stay and are reported."""
        return self.complete and not self.pending and not self.terminating


class Drainer:
    """Evicts one node's pods over several passes, with per-pod backoff on refusals."""

    def __init__(
        self,
        api: RemediationApi,
        node: str,
        options: DrainOptions,
        *,
        dry_run: bool = False,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        pass_budget: float = 20.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.node = node
        self.options = options
        self.dry_run = dry_run
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        # A pass stops evicting after this many seconds (at least one eviction per pass), so a
        # node with many pods or a slow server never keeps the loop from renewing its slot.
        self.pass_budget = pass_budget
        self._monotonic = monotonic
        self._retry: dict[str, tuple[int, float]] = {}  # pod -> (failures, next try, monotonic)
        self.evicted_total = 0

    def step(self, now: float) -> Pass:
        """One pass at monotonic time ``now``: list, then evict what is due."""
        result = Pass()
        pods, result.complete = self.api.list_pods(self.node)
        stop_at = self._monotonic() + self.pass_budget
        tried = 0
        for pod in pods:
            name = pod_name(pod)
            verdict, why = classify(
                pod,
                delete_emptydir_data=self.options.delete_emptydir_data,
                force=self.options.force,
            )
            if verdict == SKIP:
                continue
            if verdict == REFUSE:
                result.refused[name] = why
                continue
            if verdict == WAIT:
                result.terminating.append(name)
                continue
            failures, due = self._retry.get(name, (0, 0.0))
            if now < due:
                result.pending.append(name)
                continue
            if self.dry_run:
                result.evicted.append(name)
                continue
            if tried and self._monotonic() >= stop_at:
                result.pending.append(name)  # the next pass
                continue
            tried += 1
            meta = pod.get("metadata", {})
            try:
                self.api.evict(
                    meta.get("namespace", ""),
                    meta.get("name", ""),
                    grace_seconds(pod, self.options.max_grace_period),
                )
            except ApiError as exc:
                if exc.status == 404:
                    continue  # gone meanwhile
                failures += 1
                delay = min(self.backoff_cap, self.backoff_base * 2 ** (failures - 1))
                self._retry[name] = (failures, now + delay)
                result.pending.append(name)
                if exc.status == 429:
                    result.blocked[name] = pdb_of(exc) or str(exc)
                else:
                    result.errors[name] = str(exc)
                continue
            self._retry.pop(name, None)
            self.evicted_total += 1
            result.evicted.append(name)
            result.terminating.append(name)  # accepted, not gone: a later pass sees it go
        return result
