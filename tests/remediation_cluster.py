"""Workloads on the real kube-apiserver for remediation tests and benches (no pytest in here).

There is no kubelet, scheduler or controller manager (see shared/envtest/README.md): pods are
API objects bound to a node with ``spec.nodeName``; a pod the Eviction API should weigh
against a PodDisruptionBudget is made ``Running`` and ``Ready`` through the status
subresource, and the PDB's status is set here, as a disruption controller would.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REMEDIATION_RBAC = REPO / "packaging" / "kubernetes" / "remediation" / "rbac.yaml"
LEASE_NAMESPACE = "node-healthcheck-remediation"
ANNOTATION = "remediation.node-healthcheck.io/state"


def ok(result, *codes):
    status, body = result
    assert status in (codes or (200, 201)), f"HTTP {status}: {body.get('message')}"
    return body


def make_namespace(env, name: str) -> None:
    ok(env.request("POST", "/api/v1/namespaces", body={"metadata": {"name": name}}))
    # No controller creates the default ServiceAccount, and pods need one.
    ok(
        env.request(
            "POST",
            f"/api/v1/namespaces/{name}/serviceaccounts",
            body={"metadata": {"name": "default"}},
        )
    )


def make_pod(
    env,
    ns: str,
    name: str,
    node: str,
    *,
    owner: str | None = "ReplicaSet",
    labels=None,
    annotations=None,
    volumes=None,
    running=False,
) -> dict:
    meta: dict = {"name": name, "namespace": ns, "labels": labels or {}}
    if annotations:
        meta["annotations"] = annotations
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": owner,
                "name": f"{name}-owner",
                "uid": str(uuid.uuid4()),
                "controller": True,
            }
        ]
    spec: dict = {
        "nodeName": node,
        "containers": [{"name": "c", "image": "none"}],
        "terminationGracePeriodSeconds": 300,
    }
    if volumes:
        spec["volumes"] = volumes
    pod = ok(
        env.request(
            "POST",
            f"/api/v1/namespaces/{ns}/pods",
            body={"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec},
        )
    )
    if running:
        status = {
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }
        pod = ok(
            env.request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{name}/status",
                body=status,
                content_type="application/merge-patch+json",
            )
        )
    return pod


def make_pdb(env, ns: str, name: str, labels: dict, allowed: int) -> None:
    body = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": labels}},
    }
    ok(env.request("POST", f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", body=body))
    set_pdb_allowed(env, ns, name, allowed)


def set_pdb_allowed(env, ns: str, name: str, allowed: int) -> None:
    """The PDB's status, as the disruption controller (absent here) would write it."""
    path = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}"
    pdb = ok(env.request("GET", path))
    status = {
        "status": {
            "observedGeneration": pdb["metadata"]["generation"],
            "disruptionsAllowed": allowed,
            "currentHealthy": 1 + allowed,
            "desiredHealthy": 1,
            "expectedPods": 1 + allowed,
        }
    }
    ok(
        env.request(
            "PATCH", f"{path}/status", body=status, content_type="application/merge-patch+json"
        )
    )


def pod(env, ns: str, name: str) -> dict:
    return ok(env.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}"))


def evicted(env, ns: str, name: str) -> bool:
    """Whether the pod's eviction was accepted: it is terminating, or already gone."""
    status, body = env.request("GET", f"/api/v1/namespaces/{ns}/pods/{name}")
    return status == 404 or bool(ok((status, body))["metadata"].get("deletionTimestamp"))


class Kubelet:
    """Finishes the graceful deletions of pods in ``ns`` (a background thread, every
    ``poll`` seconds), as a node's kubelet would once their containers stopped: none runs
    here, and a drain waits until evicted pods are gone."""

    def __init__(self, env, ns: str, poll: float = 0.05) -> None:
        self.env = env
        self.ns = ns
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)

    def finish(self) -> int:
        """One pass: delete for good every terminating pod; how many."""
        pods = ok(self.env.request("GET", f"/api/v1/namespaces/{self.ns}/pods"))["items"]
        done = 0
        for item in pods:
            meta = item["metadata"]
            if meta.get("deletionTimestamp"):
                path = f"/api/v1/namespaces/{self.ns}/pods/{meta['name']}"
                body = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}
                status, _ = self.env.request("DELETE", path, body=body)
                done += status in (200, 202)
        return done

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            self.finish()

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


def node(env, name: str) -> dict:
    return ok(env.request("GET", f"/api/v1/nodes/{name}"))


def record(node_obj: dict) -> dict:
    text = (node_obj["metadata"].get("annotations") or {}).get(ANNOTATION)
    return json.loads(text) if text else {}


def our_taints(node_obj: dict) -> list[str]:
    return [
        t["key"]
        for t in node_obj["spec"].get("taints") or []
        if t["key"].startswith("remediation.node-healthcheck.io/")
    ]


def clear_leases(env) -> None:
    ok(env.request("DELETE", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"))


def leases(env) -> list[dict]:
    return ok(
        env.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases")
    )["items"]


def wait_for(predicate, timeout: float = 20.0, poll: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` at ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(poll)


class Conditions:
    """Our own conditions as a test sets them (what the agent's condition table would hold)."""

    def __init__(self, owned=("MaintenanceScheduled",)) -> None:
        self._lock = threading.Lock()
        self.owned = set(owned)
        self.values: dict[str, tuple[str, float]] = {}

    def set(self, ctype: str, status: str) -> None:
        with self._lock:
            self.values[ctype] = (status, time.time())

    def own(self, ctype: str):
        if ctype not in self.owned:
            return None  # another reporter's: the controller reads it from the Node
        with self._lock:
            return self.values.get(ctype, (None, 0.0))


class Events:
    """Collects the Events a controller emits (reason, message), thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.items: list[tuple[str, str, str]] = []

    def __call__(self, event) -> None:
        with self._lock:
            self.items.append((event.type, event.reason, event.message))

    def reasons(self) -> list[str]:
        with self._lock:
            return [reason for _, reason, _ in self.items]

    def messages(self, reason: str) -> list[str]:
        with self._lock:
            return [m for _, r, m in self.items if r == reason]


def controller(
    env,
    node_name: str,
    remediation: dict,
    conditions: Conditions,
    events: Events,
    *,
    dry_run=False,
    active_tick=0.05,
    checks=(),
    catalog=None,
    metrics=None,
):
    """A remediation controller for ``node_name`` talking to the real server as the agent;
    ``checks``/``catalog`` give the agent's checks (a ``repair`` rule runs their repair)."""
    from healthcheck._agent.clock import Clock
    from healthcheck._agent.config import parse_config
    from healthcheck._agent.kube import load_client_config
    from healthcheck._agent.remediation.api import RemediationApi
    from healthcheck._agent.remediation.controller import Controller
    from healthcheck._agent.remediation.wiring import _repairs

    agent_config = parse_config(
        {"checks": list(checks), "remediation": remediation}, dict(catalog or {})
    )
    runs, describes = _repairs(agent_config)
    api = RemediationApi(load_client_config(str(env.kubeconfig("agent"))))
    return Controller(
        agent_config.remediation,
        api,
        node_name,
        emit=events,
        clock=Clock(),
        own=conditions.own,
        repairs=runs,
        describe_repair=describes,
        dry_run=dry_run,
        metrics=metrics,
        active_tick=active_tick,
        drain_backoff=(0.1, 0.4),
    )
