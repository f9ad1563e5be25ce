"""packaging/: manifests parse, RBAC grants nothing beyond NPD's role, units say what they do."""

from __future__ import annotations

import configparser

import pytest
import yaml

from healthcheck import _host as host
from healthcheck._agent.config import parse_config

from .conftest import REPO

K8S = REPO / "packaging" / "kubernetes"
SYSTEMD = REPO / "packaging" / "systemd"
# NPD's system:node-problem-detector (spec 7.3), with events also in the newer API group.
ALLOWED = {
    ("", "nodes", "get"),
    ("", "nodes/status", "patch"),
    ("", "events", "create"),
    ("", "events", "patch"),
    ("", "events", "update"),
    ("events.k8s.io", "events", "create"),
    ("events.k8s.io", "events", "patch"),
    ("events.k8s.io", "events", "update"),
}


@pytest.fixture(scope="module")
def documents():
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(documents, kind):
    return [d for d in documents if d["kind"] == kind]


def test_every_manifest_has_kind_and_name(documents):
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",
            "DaemonSet",
            "FlowSchema",
            "PriorityLevelConfiguration",
        ]
    )
    for doc in documents:
        assert doc["apiVersion"] and doc["metadata"]["name"]


def test_rbac_grants_nothing_beyond_npds_role(documents):
    (role,) = by_kind(documents, "ClusterRole")
    granted = set()
    for rule in role["rules"]:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, "no resourceNames/URLs games"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    assert "*" not in (group, resource, verb)
                    granted.add((group, resource, verb))
    assert granted <= ALLOWED
    assert ("", "nodes/status", "patch") in granted and ("", "nodes", "get") in granted
    assert not by_kind(documents, "Role") and not by_kind(documents, "RoleBinding")


def test_binding_ties_the_daemonset_account_to_the_role(documents):
    (binding,) = by_kind(documents, "ClusterRoleBinding")
    (account,) = by_kind(documents, "ServiceAccount")
    (role,) = by_kind(documents, "ClusterRole")
    (ds,) = by_kind(documents, "DaemonSet")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def test_daemonset_mounts_only_what_the_checks_read_read_only(documents):
    (ds,) = by_kind(documents, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    host_paths = {v["hostPath"]["path"]: n for n, v in volumes.items() if "hostPath" in v}
    # journal (log-counter), machine-id (which journal), containerd (cri), state (writable)
    assert set(host_paths) == {
        "/var/log/journal",
        "/etc/machine-id",
        "/run/containerd",
        "/var/lib/node-healthcheck",
    }
    for name in host_paths.values():
        assert mounts[name].get("readOnly", False) is (
            name != host_paths["/var/lib/node-healthcheck"]
        )
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_daemonset_runs_without_capabilities_and_probes_over_http(documents):
    (ds,) = by_kind(documents, "DaemonSet")
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert "privileged" not in security
    config = yaml.safe_load(by_kind(documents, "ConfigMap")[0]["data"]["agent.yaml"])
    host, port = config["server"].rsplit(":", 1)
    for probe in ("livenessProbe", "readinessProbe"):
        # no exec probe: starting Python costs the pod its CPU limit for seconds
        get = container[probe]["httpGet"]
        assert (get["host"], get["port"], get["path"]) == (host, int(port), "/healthz")
    limits = container["resources"]["limits"]
    assert limits["memory"] and limits["cpu"]


def test_configmap_holds_a_valid_agent_config(documents):
    (cm,) = by_kind(documents, "ConfigMap")
    catalog = {n: lc.checker for n, lc in host.discover().checkers.items()}
    config = parse_config(yaml.safe_load(cm["data"]["agent.yaml"]), catalog)
    assert config.checks


def unit(name):
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(SYSTEMD / name)
    return parser


def test_systemd_units():
    service = unit("healthcheck-agent.service")
    assert service["Service"]["ExecStart"].split()[1:3] == ["agent", "--config"]
    assert "--once" not in service["Service"]["ExecStart"]
    once = unit("healthcheck-agent-once.service")
    assert once["Service"]["Type"] == "oneshot"
    assert once["Service"]["ExecStart"].split()[1:3] == ["agent", "--once"]
    timer = unit("healthcheck-agent-once.timer")
    assert timer["Timer"]["OnUnitActiveSec"] and timer["Timer"]["RandomizedDelaySec"]


def test_dockerfile_ships_the_agent_and_its_config():
    text = (REPO / "packaging" / "Dockerfile").read_text()
    assert '"/src[all]"' in text
    assert 'ENTRYPOINT ["healthcheck"]' in text
    assert "COPY config/agent.yaml" in text
