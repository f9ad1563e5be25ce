"""packaging/kubernetes/ against the real kube-apiserver: every manifest is accepted (server-side
dry run), and the shipped RBAC grants the agent exactly NPD's rights, nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
MANIFESTS = sorted((REPO / "packaging" / "kubernetes").glob("*.yaml"))
NPD_ROLE = "system:node-problem-detector"
REFERENCE_USER = "npd-reference"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
# (group, resource, subresource): what the agent uses and its neighbours a mistake could open
RESOURCES = [
    ("", "nodes", ""),
    ("", "nodes", "status"),
    ("", "nodes", "proxy"),
    ("", "events", ""),
    ("events.k8s.io", "events", ""),
    ("", "pods", ""),
    ("", "pods", "eviction"),
    ("", "pods", "status"),
    ("", "secrets", ""),
    ("", "configmaps", ""),
    ("", "serviceaccounts", "token"),
    ("coordination.k8s.io", "leases", ""),
    ("apps", "daemonsets", ""),
    ("rbac.authorization.k8s.io", "clusterroles", ""),
    ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
    ("certificates.k8s.io", "certificatesigningrequests", ""),
]


def test_manifests_exist():
    names = {path.name for path in MANIFESTS}
    assert {"rbac.yaml", "daemonset.yaml", "configmap.yaml"} <= names


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_passes_server_side_dry_run(shipped_rbac, manifest):
    proc = shipped_rbac.kubectl("apply", "--dry-run=server", "-f", str(manifest), check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(server dry run)" in proc.stdout


@pytest.fixture(scope="module")
def npd_reference(shipped_rbac):
    """A user bound to the built-in ClusterRole system:node-problem-detector, to compare with."""
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "envtest-npd-reference"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": NPD_ROLE,
        },
        "subjects": [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": REFERENCE_USER}
        ],
    }
    status, body = shipped_rbac.request(
        "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", body=binding
    )
    assert status in (201, 409), body
    yield shipped_rbac
    shipped_rbac.request(
        "DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/envtest-npd-reference"
    )


def allowed(env, user, groups, verb, group, resource, subresource, namespace="default") -> bool:
    attributes = {"verb": verb, "group": group, "resource": resource}
    if subresource:
        attributes["subresource"] = subresource
    if resource in ("events", "pods", "secrets", "configmaps", "serviceaccounts", "leases"):
        attributes["namespace"] = namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": groups, "resourceAttributes": attributes},
    }
    status, body = env.request(
        "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review
    )
    assert status == 201, body
    return bool(body["status"].get("allowed"))


def test_subject_access_reviews_grant_the_agent_exactly_the_npd_role(npd_reference):
    """The reference user is in the same groups, so only the two roles differ."""
    env = npd_reference
    agent = env.identities["agent"].user
    agent_grants, npd_grants = set(), set()
    for group, resource, subresource in RESOURCES:
        for verb in VERBS:
            key = (verb, group, resource, subresource)
            if allowed(env, agent, SA_GROUPS, verb, group, resource, subresource):
                agent_grants.add(key)
            if allowed(env, REFERENCE_USER, SA_GROUPS, *key):
                npd_grants.add(key)
    assert agent_grants == npd_grants
    # and those are the agent's four calls (events in both API groups)
    assert agent_grants == {
        ("get", "", "nodes", ""),
        ("patch", "", "nodes", "status"),
        ("create", "", "events", ""),
        ("patch", "", "events", ""),
        ("update", "", "events", ""),
        ("create", "events.k8s.io", "events", ""),
        ("patch", "events.k8s.io", "events", ""),
        ("update", "events.k8s.io", "events", ""),
    }


def _rules(env, *impersonate: str) -> list[str]:
    proc = env.kubectl("auth", "can-i", "--list", *impersonate)
    return sorted(" ".join(line.split()) for line in proc.stdout.splitlines()[1:])


def test_the_agents_whole_rule_list_equals_the_npd_roles(npd_reference):
    """All rules, not a sample: the rules review of both identities is the same list."""
    agent = npd_reference.identities["agent"].user
    groups = [f"--as-group={g}" for g in SA_GROUPS[:2]]
    ours = _rules(npd_reference, f"--as={agent}", *groups)
    npds = _rules(npd_reference, f"--as={REFERENCE_USER}", *groups)
    assert ours == npds
    assert any(line.startswith("nodes/status [] [] [patch]") for line in ours)
