"""packaging/kubernetes/flowcontrol.yaml on the real kube-apiserver: it applies, and API
Priority and Fairness files the agent's requests (its ServiceAccount) under our FlowSchema and
PriorityLevelConfiguration, and nobody else's.

Which schema matched is read from the apiserver's own answer: every response carries
``X-Kubernetes-PF-FlowSchema-UID`` and ``X-Kubernetes-PF-PriorityLevel-UID``.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from pathlib import Path

import pytest

FLOWCONTROL = Path(__file__).resolve().parents[2] / "packaging" / "kubernetes" / "flowcontrol.yaml"
APF = "/apis/flowcontrol.apiserver.k8s.io/v1"


def call(env, identity, method, path, body=None, content_type="application/json"):
    """(status, FlowSchema UID, PriorityLevel UID) of one request as ``identity``."""
    context = ssl.create_default_context(cafile=str(env.ca_file))
    conn = http.client.HTTPSConnection("127.0.0.1", env.port, timeout=10, context=context)
    headers = {"Authorization": f"Bearer {env.identities[identity].token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = content_type
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        response.read()
        return (
            response.status,
            response.getheader("X-Kubernetes-PF-FlowSchema-UID"),
            response.getheader("X-Kubernetes-PF-PriorityLevel-UID"),
        )
    finally:
        conn.close()


def uid(env, kind, name):
    status, obj = env.request("GET", f"{APF}/{kind}/{name}")
    assert status == 200, obj
    return obj["metadata"]["uid"]


@pytest.fixture
def flowcontrol(shipped_rbac):
    env = shipped_rbac
    env.kubectl("apply", "-f", str(FLOWCONTROL))
    try:
        yield env
    finally:
        env.kubectl("delete", "-f", str(FLOWCONTROL), "--ignore-not-found")


def classified(env, identity, method, path, want_schema, **kw):
    """Poll briefly: APF picks up a new FlowSchema from its informer, not synchronously."""
    deadline = time.monotonic() + 15
    while True:
        status, schema, level = call(env, identity, method, path, **kw)
        if schema == want_schema or time.monotonic() > deadline:
            return status, schema, level
        time.sleep(0.2)


def test_without_it_the_agent_shares_workload_high_with_kube_system_controllers(shipped_rbac):
    env = shipped_rbac
    env.create_node("apf-before")
    try:
        _, schema, level = call(env, "agent", "GET", "/api/v1/nodes/apf-before")
        assert schema == uid(env, "flowschemas", "kube-system-service-accounts")
        assert level == uid(env, "prioritylevelconfigurations", "workload-high")
    finally:
        env.delete_node("apf-before")


def test_the_agents_requests_are_classified_into_its_own_bounded_level(flowcontrol):
    env = flowcontrol
    schema_uid = uid(env, "flowschemas", "node-healthcheck")
    level_uid = uid(env, "prioritylevelconfigurations", "node-healthcheck")
    _, level = env.request("GET", f"{APF}/prioritylevelconfigurations/node-healthcheck")
    limited = level["spec"]["limited"]
    assert limited["lendablePercent"] == 0 and limited["borrowingLimitPercent"] == 0
    env.create_node("apf-node")
    try:
        assert classified(env, "agent", "GET", "/api/v1/nodes/apf-node", schema_uid) == (
            200, schema_uid, level_uid,
        )  # fmt: skip
        patch = {"status": {"conditions": [{"type": "KernelDeadlock", "status": "False"}]}}
        assert call(
            env, "agent", "PATCH", "/api/v1/nodes/apf-node/status", patch,
            "application/strategic-merge-patch+json",
        ) == (200, schema_uid, level_uid)  # fmt: skip
        event = {
            "metadata": {"name": "apf-node.1", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "apf-node", "apiVersion": "v1"},
            "reason": "KernelHasNoDeadlock",
            "message": "x",
            "type": "Normal",
            "source": {"component": "healthcheck-agent", "host": "apf-node"},
        }
        assert call(env, "agent", "POST", "/api/v1/namespaces/default/events", event) == (
            201, schema_uid, level_uid,
        )  # fmt: skip
        # The kubelet (the node identity) and an admin keep their own schemas.
        _, node_schema, _ = call(env, "node", "GET", f"/api/v1/nodes/{env.node_name}")
        _, admin_schema, _ = call(env, "admin", "GET", "/api/v1/nodes/apf-node")
        assert schema_uid not in (node_schema, admin_schema)
        kubelet_schemas = [uid(env, "flowschemas", n) for n in ("system-node-high", "system-nodes")]
        assert node_schema in kubelet_schemas
    finally:
        env.delete_node("apf-node")
        env.request("DELETE", "/api/v1/namespaces/default/events/apf-node.1")
