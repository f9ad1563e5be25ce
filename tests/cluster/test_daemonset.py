"""packaging/kubernetes/ on a real one-node cluster: the pod, its privileges, what the agent
reports on the node, its Events, endpoints, probes and logs."""

from __future__ import annotations

import json
import re
import urllib.request

import psutil

from cluster import deploy
from cluster.node import NODE_NAME

METRICS = ("0.0.0.0", 20257)  # the ConfigMap's `metrics:`
SERVER = ("127.0.0.1", 20256)  # the ConfigMap's `server:`


def agent_exec(cluster, *argv: str, check: bool = True):
    return cluster.kubectl(
        "exec", "-n", deploy.NAMESPACE, f"ds/{deploy.DAEMONSET}", "-c", deploy.CONTAINER,
        "--", *argv, check=check,
    )  # fmt: skip


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.read().decode()


def test_pod_is_ready_as_root_without_any_capability(cluster, deployed):
    (pod,) = deploy.agent_pods(cluster)
    assert deploy.is_ready(pod)
    assert pod["spec"]["nodeName"] == NODE_NAME
    status = dict(
        line.split(":\t", 1)
        for line in agent_exec(cluster, "cat", "/proc/1/status").stdout.splitlines()
    )
    assert status["Uid"].split()[0] == "0"
    for capabilities in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(status[capabilities], 16) == 0, capabilities
    assert status["NoNewPrivs"].strip() == "1"
    write = agent_exec(cluster, "touch", "/opt/node-healthcheck/x", check=False)
    assert write.returncode != 0 and "Read-only file system" in write.stderr


def test_conditions_come_from_the_real_components(cluster, deployed):
    conditions = cluster.node_conditions()
    # the real kubelet's /healthz on localhost:10248, over the host network
    assert conditions["KubeletUnhealthy"]["status"] == "False"
    assert conditions["KubeletUnhealthy"]["reason"] == "KubeletIsHealthy"
    # the cluster's containerd, through the mounted socket folder
    assert conditions["ContainerRuntimeUnhealthy"]["status"] == "False"
    assert conditions["ContainerRuntimeUnhealthy"]["reason"] == "ContainerRuntimeIsHealthy"
    # no kube-proxy runs here: a clear problem, and the log says why
    proxy = conditions["KubeProxyUnhealthy"]
    assert (proxy["status"], proxy["reason"]) == ("True", "KubeProxyUnhealthy")
    assert proxy["message"] == "kube-proxy:kube-proxy was found unhealthy; repair flag : false"
    logs = cluster.kubectl("logs", "-n", deploy.NAMESPACE, f"ds/{deploy.DAEMONSET}").stdout
    assert "kube-proxy: GET http://localhost:10256/livez: cannot connect" in logs
    assert deployed.types <= set(conditions)


def test_the_kubelets_ready_condition_is_left_to_the_kubelet(cluster, deployed):
    node = cluster.get_json("node", NODE_NAME, "--show-managed-fields")
    ready = {c["type"]: c for c in node["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    # Server-side field ownership: whatever manages our condition types owns nothing else.
    owners: dict[str, set[str]] = {}
    for entry in node["metadata"]["managedFields"]:
        if entry.get("subresource") != "status":
            continue
        conditions = entry.get("fieldsV1", {}).get("f:status", {}).get("f:conditions", {})
        for key in conditions:
            if key.startswith("k:"):
                owners.setdefault(entry["manager"], set()).add(json.loads(key[2:])["type"])
    agent_managers = [m for m, types in owners.items() if types & deployed.types]
    assert agent_managers
    for manager in agent_managers:
        assert owners[manager] <= deployed.types, f"{manager} owns {owners[manager]}"


def test_events_are_written_for_condition_changes(cluster, deployed):
    events = cluster.get_json(
        "events", "-n", "default",
        "--field-selector", f"involvedObject.kind=Node,involvedObject.name={NODE_NAME}",
    )["items"]  # fmt: skip
    ours = [e for e in events if e.get("source", {}).get("component") == "healthcheck-agent"]
    proxy = [e for e in ours if e["reason"] == "KubeProxyUnhealthy"]
    assert proxy and proxy[0]["type"] == "Warning"
    assert "Node condition KubeProxyUnhealthy is now: True" in proxy[0]["message"]


def test_metrics_and_healthz_on_the_configured_addresses(cluster, deployed):
    listening = {
        c.laddr.port: c.laddr.ip
        for c in psutil.net_connections(kind="tcp4")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in (METRICS[1], SERVER[1])
    }
    assert listening == {METRICS[1]: METRICS[0], SERVER[1]: SERVER[0]}
    metrics = get(METRICS[1], "/metrics")
    assert 'problem_gauge{reason="KubeProxyUnhealthy",type="KubeProxyUnhealthy"} 1.0' in metrics
    assert 'healthcheck_check_status{check="cri"} 0.0' in metrics
    assert 'healthcheck_check_status{check="kubelet"} 0.0' in metrics
    assert get(SERVER[1], "/healthz") == "ok"
    served = {c["type"]: c["status"] for c in json.loads(get(SERVER[1], "/conditions"))}
    assert served["KubeProxyUnhealthy"] == "True" and set(served) == deployed.types


def probe_counts(cluster, pod: dict) -> dict[tuple[str, str], float]:
    """The kubelet's prober_probe_total for the agent container: {(probe_type, result): n}."""
    counts = {}
    pattern = re.compile(r"^prober_probe_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    for line in cluster.kubelet_get("/metrics/probes").splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("pod_uid") == pod["metadata"]["uid"]:
            counts[(labels["probe_type"], labels["result"])] = float(match["value"])
    return counts


def test_the_manifests_http_probes_succeed(cluster, deployed):
    (pod,) = deploy.agent_pods(cluster)

    def both_probes_ran():
        counts = probe_counts(cluster, pod)
        return (
            counts
            if {("Liveness", "successful"), ("Readiness", "successful")} <= set(counts)
            else None
        )

    counts = deploy.wait_for(both_probes_ran, 60, "a successful liveness and readiness probe")
    assert counts.get(("Liveness", "failed"), 0) == 0


def test_logs_start_cleanly(cluster, deployed):
    logs = cluster.kubectl("logs", "-n", deploy.NAMESPACE, f"ds/{deploy.DAEMONSET}").stdout
    lines = logs.splitlines()
    checks = len(yaml_checks())
    assert lines[0] == f"healthcheck agent: running {checks} checks for node {NODE_NAME}"
    assert "Traceback" not in logs
    # every line is the agent's own or a checker's one-line reason
    for line in lines:
        assert re.match(r"^(healthcheck agent|[a-z-]+): ", line), line


def yaml_checks() -> list:
    import yaml

    return yaml.safe_load(deploy.configmap_agent_yaml())["checks"]
