"""One face for the two API servers the agent's tests run against: the real kube-apiserver
(tests/envtest.py) and the double (tests/k8s_double.py, kept for faults the real server cannot
produce on demand).

A test written against :class:`Backend` runs against both (the ``kube`` fixture is
parametrized). The real backend gives each test its own Node (a unique name), so tests sharing
the session's server never see each other's conditions or events; the agent talks to it as the
ServiceAccount packaging/kubernetes/rbac.yaml binds, with exactly those rights. What the agent
sent is read from the server's audit log there, from the double's request log here.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass

VERBS = {"create": "POST", "patch": "PATCH", "update": "PUT", "delete": "DELETE", "get": "GET"}
_counter = itertools.count(1)


@dataclass(frozen=True)
class Call:
    """One request the agent made: ``method`` (HTTP) and ``path`` (without the query)."""

    method: str
    path: str


class Backend:
    """What the agent tests need of an API server; see the subclasses."""

    name = ""
    node = "node-1"
    #: whether raw request bodies are recorded (only the double keeps them)
    records_bodies = False

    def kubeconfig(self, tmp_path) -> str:
        raise NotImplementedError

    def add_node(self, name: str, conditions=()) -> None:
        """(Re)create the node, with these status conditions."""
        raise NotImplementedError

    def remove_node(self, name: str) -> None:
        raise NotImplementedError

    def node_uid(self, name: str) -> str:
        raise NotImplementedError

    def conditions(self, name: str) -> dict[str, dict]:
        """The node's conditions by type; ``{}`` when the node is absent or has none."""
        raise NotImplementedError

    def events(self) -> list[dict]:
        """Events about this test's node."""
        raise NotImplementedError

    def delete_events(self) -> None:
        """Delete this test's events on the server (as expiry would)."""
        raise NotImplementedError

    def requests(self) -> list[Call]:
        """The agent's requests so far, in order."""
        raise NotImplementedError

    def writes(self) -> list[Call]:
        return [c for c in self.requests() if c.method != "GET"]

    def status_patches(self) -> list[Call]:
        return [c for c in self.requests() if c.method == "PATCH" and c.path.endswith("/status")]

    def go_down(self) -> None:
        raise NotImplementedError

    def come_back(self) -> None:
        raise NotImplementedError

    def wait_for(self, predicate, timeout: float = 10.0, poll: float = 0.05) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate(self):
                return True
            time.sleep(poll)
        return False

    def close(self) -> None:
        pass


class DoubleBackend(Backend):
    name = "double"
    records_bodies = True

    def __init__(self, double) -> None:
        self.double = double
        self.node = "node-1"

    def kubeconfig(self, tmp_path) -> str:
        from k8s_double import write_kubeconfig

        return write_kubeconfig(tmp_path / "kubeconfig-double", self.double.url)

    def add_node(self, name, conditions=()) -> None:
        self.double.add_node(name, conditions)

    def remove_node(self, name) -> None:
        with self.double.lock:
            self.double.nodes.pop(name, None)

    def node_uid(self, name) -> str:
        return self.double.nodes[name]["metadata"]["uid"]

    def conditions(self, name) -> dict[str, dict]:
        with self.double.lock:
            if name not in self.double.nodes:
                return {}
        return self.double.conditions(name)

    def events(self) -> list[dict]:
        with self.double.lock:
            return [dict(e) for e in self.double.events.values()]

    def delete_events(self) -> None:
        with self.double.lock:
            self.double.events.clear()

    def requests(self) -> list[Call]:
        with self.double.lock:
            return [Call(r.method, r.path) for r in self.double.requests]

    def go_down(self) -> None:
        self.double.go_down()

    def come_back(self) -> None:
        self.double.come_back()


class RealBackend(Backend):
    """A fresh node on the session's real apiserver, the agent as the shipped ServiceAccount."""

    name = "real"

    def __init__(self, env, identity: str = "agent") -> None:
        self.env = env
        self.identity = identity
        self.node = f"node-{os.getpid() % 1000}-{next(_counter)}"
        self.since = time.time()
        self.env.create_node(self.node)
        self._nodes = {self.node}

    def kubeconfig(self, tmp_path) -> str:
        return str(self.env.kubeconfig(self.identity))

    def add_node(self, name, conditions=()) -> None:
        self.env.delete_node(name)
        self.env.create_node(name, [dict(c) for c in conditions] or None)
        self._nodes.add(name)

    def remove_node(self, name) -> None:
        self.env.delete_node(name)

    def node_uid(self, name) -> str:
        status, node = self.env.request("GET", f"/api/v1/nodes/{name}")
        assert status == 200, node
        return node["metadata"]["uid"]

    def conditions(self, name) -> dict[str, dict]:
        status, node = self.env.request("GET", f"/api/v1/nodes/{name}")
        if status == 404:
            return {}
        assert status == 200, node
        return {c["type"]: c for c in (node.get("status") or {}).get("conditions") or []}

    def events(self) -> list[dict]:
        status, listing = self.env.request(
            "GET",
            "/api/v1/events?fieldSelector=involvedObject.name%3D" + self.node,
        )
        assert status == 200, listing
        items = listing.get("items") or []
        return sorted(items, key=lambda e: e["metadata"]["creationTimestamp"])

    def delete_events(self) -> None:
        for event in self.events():
            meta = event["metadata"]
            self.env.request(
                "DELETE", f"/api/v1/namespaces/{meta['namespace']}/events/{meta['name']}"
            )

    def requests(self) -> list[Call]:
        # The apiserver may log a request a moment after answering it: read until it settles.
        seen = self.env.audit(user=self.identity, since=self.since)
        for _ in range(20):
            time.sleep(0.05)
            again = self.env.audit(user=self.identity, since=self.since)
            if len(again) == len(seen):
                break
            seen = again
        calls = []
        for event in seen:
            verb = VERBS.get(event.get("verb", ""), event.get("verb", "").upper())
            calls.append((event["_at"], Call(verb, event["requestURI"].split("?", 1)[0])))
        return [call for _at, call in sorted(calls, key=lambda pair: pair[0])]

    def go_down(self) -> None:
        self.env.stop_apiserver()

    def come_back(self) -> None:
        self.env.start_apiserver()

    def wait_for(self, predicate, timeout: float = 10.0, poll: float = 0.1) -> bool:
        return super().wait_for(predicate, timeout, poll)

    def close(self) -> None:
        if not self.env.apiserver_running:
            self.env.start_apiserver()
        self.delete_events()
        for name in self._nodes:
            self.env.delete_node(name)
