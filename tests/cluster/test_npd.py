"""NPD's own daemon in the same cluster, running what ``healthcheck npd-config`` writes, reports
the same conditions as the agent did. Runs last: it replaces the agent's DaemonSet."""

from __future__ import annotations

import json
from pathlib import Path

from cluster import deploy
from cluster.node import NODE_NAME

COMPARED = ("KubeletUnhealthy", "KubeProxyUnhealthy", "ContainerRuntimeUnhealthy")
NPD_CONFIGS = {
    "kubelet": "health-checker-kubelet.json",
    "kube-proxy": "health-checker-kube-proxy.json",
    "cri": "health-checker-containerd.json",
}
COMMAND = "/opt/node-healthcheck/bin/healthcheck"
NPD_BINARY = "/npd/node-problem-detector"
NODE_NAME_FIELD = {"fieldPath": "spec.nodeName"}


def npd_pod(image: str, npd_binary: str, containerd_dir: str, api_port: int) -> dict:
    """NPD with our health-checker configs: an init container writes them with npd-config."""
    security = {
        "runAsUser": 0,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }
    configs = ",".join(f"/npd-config/{name}" for name in NPD_CONFIGS.values())
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "node-problem-detector", "namespace": deploy.NAMESPACE},
        "spec": {
            "hostNetwork": True,
            "serviceAccountName": "node-healthcheck",  # NPD's own rights: the shipped role
            "initContainers": [
                {
                    "name": "npd-config",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "args": [
                        "npd-config",
                        *NPD_CONFIGS,
                        "--output-dir",
                        "/npd-config",
                        "--command",
                        COMMAND,
                    ],
                    "securityContext": security,
                    "volumeMounts": [{"name": "npd-config", "mountPath": "/npd-config"}],
                }
            ],
            "containers": [
                {
                    "name": "npd",
                    "image": image,
                    "imagePullPolicy": "Never",
                    "command": [NPD_BINARY],
                    "args": [
                        f"--config.custom-plugin-monitor={configs}",
                        "--port=0",  # the agent's ports are not NPD's business here
                        "--prometheus-port=0",
                    ],
                    "env": [
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": NODE_NAME_FIELD}},
                        {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
                        {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)},
                    ],
                    "securityContext": security,
                    "volumeMounts": [
                        {"name": "npd-config", "mountPath": "/npd-config", "readOnly": True},
                        {"name": "npd", "mountPath": NPD_BINARY, "readOnly": True},
                        {"name": "containerd", "mountPath": "/run/containerd", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                {"name": "npd-config", "emptyDir": {}},
                {"name": "npd", "hostPath": {"path": npd_binary, "type": "File"}},
                {"name": "containerd", "hostPath": {"path": containerd_dir, "type": "Directory"}},
            ],
        },
    }


def without_repair_flag(message: str) -> str:
    """NPD's configs repair (``--enable-repair=true``), the pod's agent config does not."""
    return message.rsplit("; repair flag : ", 1)[0]


def test_npd_reports_the_same_conditions_as_the_agent(cluster, deployed, agent_image):
    from shared_assets import assets

    agent = {t: c for t, c in cluster.node_conditions().items() if t in COMPARED}
    assert set(agent) == set(COMPARED)
    cluster.kubectl("delete", "ds", "-n", deploy.NAMESPACE, deploy.DAEMONSET, "--wait=true")
    deploy.wait_for(lambda: not deploy.agent_pods(cluster), 60, "the agent pod to go")
    removal = {"status": {"conditions": [{"type": t, "$patch": "delete"} for t in COMPARED]}}
    cluster.kubectl(
        "patch", "node", NODE_NAME, "--subresource=status", "--type=strategic",
        "-p", json.dumps(removal),
    )  # fmt: skip
    assert not set(cluster.node_conditions()) & set(COMPARED)

    pod = npd_pod(
        agent_image.name,
        str(assets("npd") / "node-problem-detector"),
        str(Path(cluster.containerd_socket).parent),
        cluster.api.port,
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(pod))
    try:

        def npd_matches():
            now = {t: c for t, c in cluster.node_conditions().items() if t in COMPARED}
            if set(now) != set(COMPARED):
                return None
            for kind in COMPARED:
                if (now[kind]["status"], now[kind]["reason"]) != (
                    agent[kind]["status"],
                    agent[kind]["reason"],
                ):
                    return None
            return now

        try:
            npd = deploy.wait_for(npd_matches, 90, "NPD's conditions to match the agent's")
        except AssertionError:
            logs = cluster.kubectl(
                "logs", "-n", deploy.NAMESPACE, "node-problem-detector", "--tail=20", check=False
            )
            raise AssertionError(f"NPD did not match the agent: {logs.stdout[-2000:]}") from None
        for kind in COMPARED:
            assert without_repair_flag(npd[kind]["message"]) == without_repair_flag(
                agent[kind]["message"]
            )
        # NPD wrote them, not a leftover: they were removed before it started
        assert all(c["lastHeartbeatTime"] for c in npd.values())
    finally:
        cluster.kubectl(
            "delete", "pod", "-n", deploy.NAMESPACE, "node-problem-detector", "--wait=false"
        )
