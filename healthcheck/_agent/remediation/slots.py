"""The fleet budget: at most N nodes remediating at once, coordinated by the cluster itself.

One ``coordination.k8s.io/v1`` Lease per slot (``<prefix>-<i>``, i < N) in one namespace. A node
takes a free slot with a compare-and-swap (create, or PUT with the resourceVersion it read),
renews it every third of ``leaseDuration`` while it remediates, and gives it back (holder
cleared) when done. A slot whose holder stopped renewing is taken over only after it has been
*seen unchanged* for a whole ``leaseDuration`` on this node's own monotonic clock, as client-go's
leader election does, so clock skew between nodes cannot shorten it. A node that dies
mid-drain thus frees its slot after at most one lease duration.

A minimum interval between starts anywhere in the fleet is kept with one more Lease
(``<prefix>-gate``): each start moves its ``acquireTime`` with a compare-and-swap, and a start
is refused while the last one is younger than the interval.

Slots held by nodes beyond the current N (N shrank, or a percentage of fewer nodes) still count,
so the limit holds while the fleet shrinks.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from healthcheck._agent.clock import parse_rfc3339
from healthcheck._agent.kube import ApiError
from healthcheck._agent.remediation.api import RemediationApi, json_object

LABEL = "remediation.node-healthcheck.io/lease"
PREFIX = "node-healthcheck-slot"
NODE_COUNT_TTL = 300.0  # a percentage budget re-counts the nodes at most this often
MAX_FOREIGN_LEASE = 3600.0  # a Lease's own leaseDurationSeconds is believed up to this


def micro_time(epoch: float) -> str:
    """metav1.MicroTime: ``2026-11-29T09:05:30.123456Z``."""
    seconds = int(epoch)
    micros = round((epoch - seconds) * 1e6)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


def parse_micro_time(text: object) -> float | None:
    """Epoch seconds from a MicroTime (or second-precision) string; ``None`` when malformed."""
    whole = parse_rfc3339(text)
    if whole is None:
        return None
    fraction = text[19:].rstrip("Z") if isinstance(text, str) else ""
    if fraction.startswith(".") and fraction[1:].isdigit():
        whole += float("0" + fraction)
    return whole


def _spec(lease: dict[str, Any]) -> dict[str, Any]:
    return json_object(lease.get("spec"))


def _meta(lease: dict[str, Any]) -> dict[str, Any]:
    return json_object(lease.get("metadata"))


def holder_of(lease: dict[str, Any]) -> str:
    holder = _spec(lease).get("holderIdentity")
    return holder if isinstance(holder, str) else ""


class Budget:
    """The slots as one node sees them. Not thread-safe: the controller's thread owns it."""

    def __init__(
        self,
        api: RemediationApi,
        namespace: str,
        holder: str,
        *,
        max_concurrent: int = 1,
        max_percent: float | None = None,
        lease_duration: float = 60.0,
        min_interval: float = 0.0,
        prefix: str = PREFIX,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.holder = holder
        self.max_concurrent = max_concurrent
        self.max_percent = max_percent
        self.lease_duration = lease_duration
        self.min_interval = min_interval
        self.prefix = prefix
        self._monotonic = monotonic
        self._wall = wall
        self._rng = rng or random.Random()  # noqa: S311 - spreading slot choice, not secrets
        # lease name -> (record key, first monotonic time this node saw that record)
        self._seen: dict[str, tuple[tuple[object, ...], float]] = {}
        self._node_count: tuple[int, float] | None = None
        # (gate record key, first seen)
        self._gate_seen: tuple[tuple[object, ...], float] | None = None
        self.held: dict[str, Any] | None = None  # our Lease as last written
        self.renew_due = 0.0
        self.acquired_at: float | None = None

    # ------------------------------------------------------------------------- the limit

    def limit(self) -> int:
        """N: the absolute number, or the percentage of the current node count (at least 1)."""
        if self.max_percent is None:
            return self.max_concurrent
        now = self._monotonic()
        if self._node_count is None or now - self._node_count[1] > NODE_COUNT_TTL:
            self._node_count = (self.api.count_nodes(), now)
        return max(1, int(self._node_count[0] * self.max_percent / 100))

    # ------------------------------------------------------------------------ observation

    def _expired(self, lease: dict[str, Any], now: float) -> bool:
        """Free: no holder, or the same record seen for a whole lease duration (its own, or
        ours when longer)."""
        holder = holder_of(lease)
        if not holder:
            return True
        spec = _spec(lease)
        key = (holder, spec.get("renewTime"), _meta(lease).get("resourceVersion"))
        name = _meta(lease).get("name", "")
        seen = self._seen.get(name)
        if seen is None or seen[0] != key:
            self._seen[name] = (key, now)
            return False
        duration = spec.get("leaseDurationSeconds")
        if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
            duration = int(self.lease_duration)
        # A holder's own duration counts, but not beyond MAX_FOREIGN_LEASE (unless ours is
        # longer): a corrupt 2^31 s would otherwise block a slot for decades.
        duration = min(float(duration), MAX_FOREIGN_LEASE)
        return now - seen[1] > max(duration, self.lease_duration)

    def slot_names(self, n: int) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(n)]

    # ------------------------------------------------------------------------ the protocol

    def _body(self, name: str, old: dict[str, Any] | None, now_wall: float) -> dict[str, Any]:
        spec = dict(_spec(old)) if old else {}
        transitions = spec.get("leaseTransitions")
        transitions = transitions if isinstance(transitions, int) else 0
        if old and holder_of(old) != self.holder:
            transitions += 1
        stamp = micro_time(now_wall)
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": {LABEL: "slot"},
        }
        if old:
            meta["resourceVersion"] = _meta(old).get("resourceVersion")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": self.holder,
                "leaseDurationSeconds": max(1, round(self.lease_duration)),
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": transitions,
            },
        }

    def _write(self, name: str, old: dict[str, Any] | None, body: dict[str, Any]) -> dict[str, Any]:
        if old is None:
            return self.api.create_lease(self.namespace, body)
        return self.api.update_lease(self.namespace, name, body)

    def _gate_open(
        self, leases: dict[str, dict[str, Any]], now: float, now_wall: float
    ) -> tuple[bool, str]:
        """Whether a start may happen now (and, if so, the gate moved to now).

        The last start's time is another node's wall clock: one far ahead (or a hand-written
        time in the future) would close the gate for the whole fleet until then. So the gate
        also opens once this node has seen the same gate record unchanged for ``minInterval``
        on its own monotonic clock, as slot expiry does.
        """
        if self.min_interval <= 0:
            return True, ""
        gate = leases.get(f"{self.prefix}-gate")
        last = parse_micro_time(_spec(gate).get("acquireTime")) if gate else None
        if gate is not None:
            key = (_meta(gate).get("resourceVersion"), _spec(gate).get("acquireTime"))
            if self._gate_seen is None or self._gate_seen[0] != key:
                self._gate_seen = (key, now)
            if now - self._gate_seen[1] >= self.min_interval:
                last = None  # unchanged for a whole interval here: whatever its time says
        if gate is not None and last is not None and now_wall - last < self.min_interval:
            who = holder_of(gate) or "another node"
            return False, f"{who} started {max(0.0, now_wall - last):.0f}s ago (minInterval)"
        body = self._body(f"{self.prefix}-gate", gate, now_wall)
        body["metadata"]["labels"][LABEL] = "gate"
        try:
            self._write(f"{self.prefix}-gate", gate, body)
        except ApiError as exc:
            if exc.status == 409:
                return False, "another node started at the same moment"
            raise
        return True, ""

    def acquire(self) -> tuple[bool, str]:
        """Take a slot if one is free; ``(True, "")`` or ``(False, why we wait)``.

        Raises :class:`ApiError` when the API server fails (the caller retries later).
        """
        if self.held is not None:
            return True, ""
        now = self._monotonic()
        now_wall = self._wall()
        listed = self.api.list_leases(self.namespace, LABEL)
        leases = {str(_meta(lease).get("name", "")): lease for lease in listed}
        limit = self.limit()
        slots = {
            n: lease
            for n, lease in leases.items()
            if _meta(lease).get("labels", {}).get(LABEL) == "slot"
        }
        mine = [n for n, lease in slots.items() if holder_of(lease) == self.holder]
        if mine:  # this node held a slot before a restart: carry on with it
            return self._take(mine[0], slots[mine[0]], now, now_wall, adopt=True)
        busy = sorted(n for n, lease in slots.items() if not self._expired(lease, now))
        if len(busy) >= limit:
            holders = ", ".join(holder_of(slots[n]) for n in busy[:5])
            return False, f"all {limit} slot(s) held ({holders})"
        free = [n for n in self.slot_names(limit) if n not in busy]
        if not free:
            return False, f"all {limit} slot(s) held"
        open_, why = self._gate_open(leases, now, now_wall)
        if not open_:
            return False, why
        name = self._rng.choice(free)
        return self._take(name, slots.get(name), now, now_wall)

    def _take(
        self,
        name: str,
        old: dict[str, Any] | None,
        now: float,
        now_wall: float,
        adopt: bool = False,
    ) -> tuple[bool, str]:
        body = self._body(name, old, now_wall)
        if adopt and old is not None:
            body["spec"]["acquireTime"] = (
                _spec(old).get("acquireTime") or body["spec"]["acquireTime"]
            )
        try:
            self.held = self._write(name, old, body) or body
        except ApiError as exc:
            if exc.status == 409:
                return False, f"{name} was taken by another node at the same moment"
            raise
        self.renew_due = now + self.lease_duration / 3
        self.acquired_at = now
        return True, ""

    def renew(self) -> bool:
        """Renew the held slot when a third of its duration has passed; ``False`` when lost.

        A conflict means someone else wrote it (we were presumed dead): the slot is gone.
        """
        if self.held is None:
            return False
        now = self._monotonic()
        if now < self.renew_due:
            return True
        name = _meta(self.held).get("name", "")
        body = self._body(name, self.held, self._wall())
        body["spec"]["acquireTime"] = _spec(self.held).get("acquireTime")
        try:
            self.held = self.api.update_lease(self.namespace, name, body) or body
        except ApiError as exc:
            if exc.status in (404, 409):
                self.held = None
                return False
            raise  # transient: keep the slot and try again at the next tick
        self.renew_due = now + self.lease_duration / 3
        return True

    def release(self) -> None:
        """Give the slot back (holder cleared, acquireTime kept); best effort."""
        if self.held is None:
            return
        held, self.held = self.held, None
        name = _meta(held).get("name", "")
        body = self._body(name, held, self._wall())
        body["spec"].pop("holderIdentity", None)
        body["spec"]["acquireTime"] = _spec(held).get("acquireTime")
        with contextlib.suppress(ApiError):  # else it expires on its own
            self.api.update_lease(self.namespace, name, body)
        self.acquired_at = None
