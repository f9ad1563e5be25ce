"""The envtest fixture itself: who each identity is, what it may do, outage and teardown."""

from __future__ import annotations

import os

import pytest
from envtest import Envtest

SSR = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


@pytest.mark.parametrize("key", ["admin", "agent", "node", "nobody"])
def test_each_identity_authenticates_as_its_user_and_groups(envtest, key):
    status, review = envtest.request(
        "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", identity=key, body=SSR
    )
    assert status == 201, review
    info = review["status"]["userInfo"]
    ident = envtest.identities[key]
    assert info["username"] == ident.user
    assert set(ident.groups) <= set(info["groups"])


def test_nobody_has_no_rights_and_a_node_only_its_own_status(envtest):
    envtest.create_node("envtest-own")
    envtest.create_node("envtest-other")
    try:
        assert envtest.request("GET", "/api/v1/nodes/envtest-own", identity="nobody")[0] == 403
        kubectl = envtest.kubectl("get", "nodes", identity="nobody", check=False)
        assert kubectl.returncode == 1 and "forbidden" in kubectl.stderr
        patch = {"status": {"conditions": [{"type": "T", "status": "True", "reason": "R"}]}}
        ctype = "application/strategic-merge-patch+json"
        name = envtest.node_name
        envtest.create_node(name)
        try:
            status, _ = envtest.request(
                "PATCH", f"/api/v1/nodes/{name}/status", identity="node", body=patch,
                content_type=ctype,
            )  # fmt: skip
            assert status == 200
            status, body = envtest.request(
                "PATCH", "/api/v1/nodes/envtest-other/status", identity="node", body=patch,
                content_type=ctype,
            )  # fmt: skip
            assert status == 403
            assert "not allowed to modify node" in body["message"]
        finally:
            envtest.delete_node(name)
    finally:
        envtest.delete_node("envtest-own")
        envtest.delete_node("envtest-other")


def test_a_second_server_outage_keeps_data_and_stop_leaves_no_process(envtest, tmp_path):
    env = Envtest(tmp_path, assets=envtest.bin).start()
    try:
        env.create_node("survivor")
        apiserver = env._apiserver.pid
        etcd = env._etcd.pid
        env.stop_apiserver()
        assert not env.apiserver_running
        with pytest.raises(OSError):
            env.request("GET", "/api/v1/nodes/survivor", timeout=2)
        env.start_apiserver()
        assert env.request("GET", "/api/v1/nodes/survivor")[0] == 200
        apiserver = env._apiserver.pid
    finally:
        env.stop()
    for pid in (apiserver, etcd):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
