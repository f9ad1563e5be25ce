"""The DaemonSet's lifecycle on a real cluster: restarts, config changes, pod deletion and an
OOM kill never flip the node's conditions (fail-safe adoption)."""

from __future__ import annotations

import json
import time

import yaml

from cluster import deploy, podstats

PROBE_CONDITION = "ClusterTierProbe"


def snapshot(cluster, types) -> dict[str, tuple[str, str]]:
    """Each condition's (status, lastTransitionTime): what a flip would change."""
    return {
        t: (c["status"], c["lastTransitionTime"])
        for t, c in deploy.agent_conditions(cluster, types).items()
    }


def watch_until(cluster, types, before, done, timeout: float, what: str):
    """Poll the node and ``done()`` together; fail at the first condition that flips."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = snapshot(cluster, types)
        assert now == before, f"a condition changed while waiting for {what}: {now} != {before}"
        result = done()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def current_pod(cluster) -> dict:
    (pod,) = deploy.agent_pods(cluster)
    return pod


def replacement_ready(cluster, old_uid: str):
    def done():
        pods = deploy.agent_pods(cluster)
        return next(
            (p for p in pods if p["metadata"]["uid"] != old_uid and deploy.is_ready(p)), None
        )

    return done


def every_check_reported(timeout: float = 60.0) -> None:
    """The new agent has run each check at least once (its /metrics has a status for each)."""
    import urllib.request

    names = {c.get("name") or c["checker"] for c in yaml.safe_load(agent_yaml())["checks"]}

    def reported():
        try:
            with urllib.request.urlopen("http://127.0.0.1:20257/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            return False
        return all(f'healthcheck_check_status{{check="{n}"}}' in text for n in names)

    deploy.wait_for(reported, timeout, "every check to report once")


def agent_yaml() -> str:
    return deploy.configmap_agent_yaml()


def test_rollout_restart_keeps_every_condition(cluster, deployed):
    before = snapshot(cluster, deployed.types)
    assert set(before) == deployed.types
    old = current_pod(cluster)["metadata"]["uid"]
    cluster.kubectl("rollout", "restart", "-n", deploy.NAMESPACE, f"ds/{deploy.DAEMONSET}")
    watch_until(cluster, deployed.types, before, replacement_ready(cluster, old), 120, "a new pod")
    every_check_reported()
    time.sleep(1.0)  # past the reporter's 0.5 s batching
    assert snapshot(cluster, deployed.types) == before


def test_configmap_change_applies_after_a_rollout_restart(cluster, deployed):
    """As documented in the ConfigMap: the agent reads its config at start."""
    config = yaml.safe_load(agent_yaml())
    config["checks"].append(
        {
            "path": "/bin/false",
            "type": "permanent",
            "condition": PROBE_CONDITION,
            "reason": "ClusterTierProbeFailed",
            "healthyReason": "ClusterTierProbeOK",
            "healthyMessage": "fine",
            "interval": "5s",
        }
    )
    patch = {"data": {"agent.yaml": yaml.safe_dump(config, sort_keys=False)}}
    restore = {"data": {"agent.yaml": agent_yaml()}}
    cm = ["configmap", "-n", deploy.NAMESPACE, "node-healthcheck-config", "--type=merge"]
    cluster.kubectl("patch", *cm, "-p", json.dumps(patch))
    try:
        old = current_pod(cluster)["metadata"]["uid"]
        cluster.kubectl("rollout", "restart", "-n", deploy.NAMESPACE, f"ds/{deploy.DAEMONSET}")
        deploy.wait_for(replacement_ready(cluster, old), 120, "the restarted pod")

        def probe_condition():
            return cluster.node_conditions().get(PROBE_CONDITION)

        condition = deploy.wait_for(probe_condition, 60, f"{PROBE_CONDITION} on the node")
        assert (condition["status"], condition["reason"]) == ("True", "ClusterTierProbeFailed")
    finally:
        cluster.kubectl("patch", *cm, "-p", json.dumps(restore))


def test_a_deleted_pod_is_replaced_and_conditions_stay(cluster, deployed):
    before = snapshot(cluster, deployed.types)
    old = current_pod(cluster)["metadata"]["uid"]
    cluster.kubectl("delete", "pod", "-n", deploy.NAMESPACE, "-l", deploy.SELECTOR, "--wait=false")
    watch_until(cluster, deployed.types, before, replacement_ready(cluster, old), 120, "a new pod")
    every_check_reported()


def test_an_oom_killed_agent_restarts_in_place_and_keeps_conditions(cluster, deployed):
    """The kernel kills the agent at its memory limit; the kubelet restarts the container.

    A stand-in for the agent outgrowing its limit: the container's limit is lowered, on the
    host, to just above what the agent uses (the kernel refuses less), then a process in the
    container fills ``/dev/shm`` (tmpfs pages, charged to the container's memory cgroup and
    kept when their writer dies) until the cgroup is out of memory and the OOM killer ends the
    agent (its next allocation, if the writer was chosen first). Connections to the agent's
    listeners would no longer do: they are capped (issue 11) and only starve the liveness
    probe. The restarted container gets the pod's own limit back.
    """
    pod = current_pod(cluster)
    name = pod["metadata"]["name"]
    before = snapshot(cluster, deployed.types)
    restarts = pod["status"]["containerStatuses"][0]["restartCount"]
    cgroup = podstats.ContainerCgroup(podstats.container_id(pod, deploy.CONTAINER))
    for headroom in (1 << 20, 2 << 20, 4 << 20):
        try:
            cgroup.set_memory_limit(cgroup.sample().usage + headroom)
            break
        except OSError:
            continue
    exec_fill = ["exec", "-n", deploy.NAMESPACE, name, "-c", deploy.CONTAINER, "--"]
    fill = "of=/dev/shm/oom-test-fill"

    fills = []

    def restarted():
        status = current_pod(cluster)["status"]["containerStatuses"][0]
        if status["restartCount"] > restarts:
            return status
        # 4 MiB at a time, at most 10 times: beyond the headroom, while what lingers in the
        # pod's /dev/shm after the kill stays far below the restarted container's own limit.
        # dd writes until the cgroup is full, then it or the agent is killed; either way the
        # pages stay charged and the agent's next allocation ends it.
        if len(fills) < 10:
            fills.append(time.monotonic())
            cluster.kubectl(
                *exec_fill,
                "dd",
                "if=/dev/zero",
                fill,
                "bs=256k",
                "count=16",
                "oflag=append",
                "conv=notrunc",
                check=False,
                timeout=20,
            )
        return None

    status = watch_until(cluster, deployed.types, before, restarted, 120, "an OOM kill")
    terminated = status["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137), terminated
    assert pod["metadata"]["uid"] == current_pod(cluster)["metadata"]["uid"]  # in place
    cluster.kubectl(*exec_fill, "rm", "-f", "/dev/shm/oom-test-fill", check=False)

    def ready_again():
        return deploy.is_ready(current_pod(cluster))

    watch_until(cluster, deployed.types, before, ready_again, 120, "the restarted container")
    cluster.kubectl(*exec_fill, "rm", "-f", "/dev/shm/oom-test-fill", check=False)
    every_check_reported()
    assert snapshot(cluster, deployed.types) == before
