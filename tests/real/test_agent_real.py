"""The agent as a process against the real kube-apiserver, as the shipped ServiceAccount: what
only a real server shows (its merge of others' conditions, its Events, an outage, a Node
deleted and recreated, rights taken away, the node authorizer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from healthcheck._agent.clock import FakeClock
from healthcheck._agent.events import COMBINED_PREFIX, EventCorrelator
from healthcheck._agent.kube import KubeApi, load_client_config

BIN = Path(sys.executable).parent
RBAC_YAML = Path(__file__).resolve().parent.parent.parent / "packaging/kubernetes/rbac.yaml"
FLIP = """#!/bin/sh
if [ -e "{flag}" ]; then echo "flag is set"; exit 1; fi
echo "all good"
"""
# The outage the issue asks for is 2 minutes; CI runs that, a developer's run a shorter one.
OUTAGE_SECONDS = float(
    os.environ.get("ENVTEST_OUTAGE_SECONDS", "120" if os.environ.get("CI") == "true" else "30")
)
READY = {
    "type": "Ready",
    "status": "True",
    "reason": "KubeletReady",
    "message": "kubelet is posting ready status",
    "lastHeartbeatTime": "2026-01-01T00:00:00Z",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}
KERNEL_DEADLOCK = {
    "type": "KernelDeadlock",
    "status": "False",
    "reason": "KernelHasNoDeadlock",
    "message": "kernel has no deadlock",
    "lastHeartbeatTime": "2026-01-01T00:00:00Z",
    "lastTransitionTime": "2026-01-01T00:00:00Z",
}
BAD = 'Node condition FlipProblem is now: True, reason: FlipBad, message: "flag is set"'
GOOD = 'Node condition FlipProblem is now: False, reason: FlipOK, message: "flip is fine"'
NPD_FIELDS = {"type", "status", "lastHeartbeatTime", "lastTransitionTime", "reason", "message"}


class Agent:
    """``healthcheck agent`` as a child process with a flip plugin; stderr kept in a file."""

    def __init__(self, tmp: Path, kubeconfig: str, node: str, heartbeat: str = "5m") -> None:
        self.tmp = tmp
        self.flag = tmp / "flag"
        script = tmp / "flip.sh"
        script.write_text(FLIP.format(flag=self.flag))
        script.chmod(0o755)
        self.config = tmp / "agent.yaml"
        self.config.write_text(
            f"heartbeatPeriod: {heartbeat}\nmetrics: ''\nserver: ''\nchecks:\n"
            f"  - path: {script}\n    name: flip\n    type: permanent\n"
            "    condition: FlipProblem\n    reason: FlipBad\n    healthyReason: FlipOK\n"
            "    healthyMessage: flip is fine\n    interval: 500ms\n"
        )
        self.argv = [
            str(BIN / "healthcheck"),
            "agent",
            "--config",
            str(self.config),
            "--kubeconfig",
            kubeconfig,
            "--node-name",
            node,
        ]
        self.log = tmp / "agent.stderr"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Agent:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stderr=log, stdin=subprocess.DEVNULL)
        return self

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def rss_kib(self) -> int:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


@pytest.fixture
def agent(kube_real, tmp_path):
    started = []

    def make(**kw) -> Agent:
        a = Agent(tmp_path, kube_real.kubeconfig(tmp_path), kube_real.node, **kw)
        started.append(a)
        return a

    yield make
    for a in started:
        if a.running():
            a.proc.kill()
            a.proc.wait()


@pytest.fixture
def kube_real(shipped_rbac):
    from kube_backends import RealBackend

    backend = RealBackend(shipped_rbac)
    try:
        yield backend
    finally:
        backend.close()


def flip_is(status: str, reason: str | None = None):
    def predicate(kube) -> bool:
        cond = kube.conditions(kube.node).get("FlipProblem")
        return bool(cond) and cond["status"] == status and reason in (None, cond["reason"])

    return predicate


def test_conditions_have_npd_fields_flip_keep_others_and_survive_a_restart(kube_real, agent):
    kube = kube_real
    kube.add_node(kube.node, [READY, KERNEL_DEADLOCK])
    first = agent().start()
    assert kube.wait_for(flip_is("False"), 30), first.stderr()
    cond = kube.conditions(kube.node)["FlipProblem"]
    assert set(cond) == NPD_FIELDS
    assert (cond["reason"], cond["message"]) == ("FlipOK", "flip is fine")
    # Another writer (NPD, the kubelet) changes its own condition between our PATCHes.
    deadlock = {**KERNEL_DEADLOCK, "status": "True", "reason": "DockerHung", "message": "hung"}
    status, _ = kube.env.request(
        "PATCH",
        f"/api/v1/nodes/{kube.node}/status",
        body={"status": {"conditions": [deadlock]}},
        content_type="application/strategic-merge-patch+json",
    )
    assert status == 200
    first.flag.touch()
    assert kube.wait_for(flip_is("True", "FlipBad"), 10), first.stderr()
    conditions = kube.conditions(kube.node)
    assert conditions["FlipProblem"]["message"] == "flag is set"
    assert conditions["Ready"] == READY
    assert conditions["KernelDeadlock"] == deadlock
    transition = conditions["FlipProblem"]["lastTransitionTime"]
    assert first.stop() == 0
    # A restart with the problem still there: adopted, not reset, no new transition.
    second = agent().start()
    assert kube.wait_for(lambda k: "running 1 checks" in second.stderr(), 30), second.stderr()
    time.sleep(2.0)  # several runs of the check
    conditions = kube.conditions(kube.node)
    assert conditions["FlipProblem"]["status"] == "True"
    assert conditions["FlipProblem"]["lastTransitionTime"] == transition
    assert "adopted the node's existing FlipProblem" in second.stderr()
    # One event: the transition to True (a first report is no transition, as in NPD).
    assert [(e["message"], e["count"]) for e in kube.events()] == [(BAD, 1)]
    assert second.stop() == 0


def test_events_count_and_aggregation_on_the_server_as_client_go(kube_real, tmp_path):
    """The correlator's POSTs and PATCHes, as the real server stores them."""
    from healthcheck._agent.conditions import ConditionTable, Event
    from healthcheck._agent.reporter import Reporter

    kube = kube_real
    clock = FakeClock()
    api = KubeApi(load_client_config(kube.kubeconfig(tmp_path)), 5.0)
    correlator = EventCorrelator(kube.node, "default", "healthcheck-agent", clock)
    reporter = Reporter(api, kube.node, ConditionTable([], clock), correlator, clock)
    reporter.step()
    for _ in range(3):
        clock.advance(1)
        reporter.record([Event("Warning", "Same", "identical")])
        reporter.step()
    for i in range(12):
        clock.advance(1)
        reporter.record([Event("Warning", "Similar", f"message {i}")])
        reporter.step()
    events = kube.events()
    same = [e for e in events if e["reason"] == "Same"]
    assert [(e["count"], e["message"]) for e in same] == [(3, "identical")]
    assert same[0]["firstTimestamp"] < same[0]["lastTimestamp"]
    similar = [e for e in events if e["reason"] == "Similar"]
    singles = sorted(
        e["message"] for e in similar if e["count"] == 1 and "combined" not in e["message"]
    )
    assert singles == sorted(f"message {i}" for i in range(9))
    (combined,) = [e for e in similar if e["message"].startswith(COMBINED_PREFIX)]
    assert combined["count"] == 3 and combined["message"] == COMBINED_PREFIX + "message 11"
    assert all(e["involvedObject"]["uid"] == kube.node_uid(kube.node) for e in events)
    assert all(e["source"] == {"component": "healthcheck-agent", "host": kube.node} for e in events)
    assert reporter.failures == 0 and reporter.events_sent == 15


def test_apiserver_outage_then_the_latest_state_within_10s_and_nothing_lost(kube_real, agent):
    kube = kube_real
    a = agent().start()
    assert kube.wait_for(flip_is("False"), 30), a.stderr()
    time.sleep(1.0)
    rss_before = a.rss_kib()
    kube.go_down()
    try:
        # Three changes while the server is away; only the last is the node's state.
        for step in range(3):
            time.sleep(OUTAGE_SECONDS / 3)
            if step == 1:
                a.flag.unlink()
            else:
                a.flag.touch()
            assert a.running(), a.stderr()
    finally:
        kube.come_back()
    returned = time.monotonic()
    assert kube.wait_for(flip_is("True", "FlipBad"), 10), a.stderr()
    delay = time.monotonic() - returned
    print(f"outage {OUTAGE_SECONDS:.0f}s: latest state on the node {delay:.2f}s after return")

    # All three transitions, the third identical to the first: client-go's count goes to 2.
    def counts(k) -> dict:
        return {e["message"]: e["count"] for e in k.events()}

    assert kube.wait_for(lambda k: counts(k) == {BAD: 2, GOOD: 1}, 10), counts(kube)
    assert a.running()
    assert a.rss_kib() < rss_before + 10 * 1024
    failures = [line for line in a.stderr().splitlines() if "unreachable" in line]
    # Backoff: about one attempt per 4-8 s at the cap, never a busy loop.
    assert 3 <= len(failures) <= OUTAGE_SECONDS / 3 + 6
    assert all(line.startswith("healthcheck agent: ") for line in failures)
    assert "Traceback" not in a.stderr()
    assert a.stop() == 0


def test_node_deleted_and_recreated_while_the_agent_runs(kube_real, agent):
    kube = kube_real
    a = agent(heartbeat="3s").start()
    assert kube.wait_for(flip_is("False"), 30), a.stderr()
    kube.remove_node(kube.node)
    a.flag.touch()  # a change while the node is gone: PATCH answers 404, retried
    assert kube.wait_for(lambda k: "HTTP 404" in a.stderr(), 10), a.stderr()
    time.sleep(3.0)
    assert a.running()
    kube.add_node(kube.node)
    assert kube.wait_for(flip_is("True", "FlipBad"), 15), a.stderr()
    # Recreated again with nothing changing: the heartbeat puts our condition back, and later
    # events name the new Node's UID (kubectl describe node finds events by it).
    kube.add_node(kube.node)
    assert kube.wait_for(flip_is("True", "FlipBad"), 15), a.stderr()
    uid = kube.node_uid(kube.node)
    a.flag.unlink()
    assert kube.wait_for(flip_is("False", "FlipOK"), 15), a.stderr()
    assert kube.wait_for(lambda k: any(e["reason"] == "FlipOK" for e in k.events()), 10)
    (healthy,) = [e for e in kube.events() if e["reason"] == "FlipOK"]
    assert healthy["involvedObject"]["uid"] == uid
    assert "Traceback" not in a.stderr()
    assert a.stop() == 0


def test_rights_taken_away_then_restored(kube_real, agent):
    kube, env = kube_real, kube_real.env
    a = agent().start()
    assert kube.wait_for(flip_is("False"), 30), a.stderr()
    env.kubectl("delete", "clusterrolebinding", "node-healthcheck")
    try:
        a.flag.touch()
        assert kube.wait_for(lambda k: "HTTP 403" in a.stderr(), 15), a.stderr()
        time.sleep(10.0)
        assert a.running()
        lines = [line for line in a.stderr().splitlines() if "HTTP 403" in line]
        assert all(line.startswith("healthcheck agent: ") and "forbidden" in line for line in lines)
        assert all("retrying in" in line or "rejected" in line for line in lines)
        assert len(lines) <= 8  # bounded: backoff, not a busy loop (10-15 s of 403s)
        assert kube.conditions(kube.node)["FlipProblem"]["status"] == "False"
    finally:
        env.kubectl("apply", "-f", str(RBAC_YAML))
    assert kube.wait_for(flip_is("True", "FlipBad"), 15), a.stderr()
    assert a.stop() == 0


def test_kubelet_kubeconfig_patches_its_own_node_and_not_another(shipped_rbac, run_cli, tmp_path):
    env = shipped_rbac
    own = env.node_name
    env.create_node(own)
    env.create_node("someone-else")
    try:
        a = Agent(tmp_path, str(env.kubeconfig("node")), own)
        a.flag.touch()
        once = [*a.argv[1:], "--once"]
        proc = run_cli(*once)
        assert proc.returncode == 1, proc.stderr  # the check's problem, reported
        assert env.node_conditions(own)["FlipProblem"]["status"] == "True"
        # Another node: the node authorizer refuses even to read it, so nothing is patched;
        # the check is fine, the report failed: exit 3 (not reported), one line per attempt.
        a.flag.unlink()
        other = [*once[:-3], "--node-name", "someone-else", "--once"]
        proc = run_cli(*other)
        assert proc.returncode == 3, proc.stderr
        assert "cannot read 'someone-else', only its own Node object" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert all(line.startswith("healthcheck agent: ") for line in proc.stderr.splitlines())
        assert "FlipProblem" not in env.node_conditions("someone-else")
    finally:
        env.delete_node(own)
        env.delete_node("someone-else")
        env.request("DELETE", "/api/v1/namespaces/default/events")


INCLUSTER = """set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
cp "$1/token" "$1/ca.crt" /run/secrets/kubernetes.io/serviceaccount/
shift
exec "$@"
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (a private mount namespace)")
def test_in_cluster_config_with_a_real_service_account_token(kube_real, tmp_path):
    """The DaemonSet path: no kubeconfig, a token the apiserver issued for the shipped
    ServiceAccount (TokenRequest), mounted where a pod has it, in a private mount namespace."""
    env = kube_real.env
    token = env.kubectl("create", "token", "node-healthcheck", "-n", "kube-system").stdout
    secrets = tmp_path / "sa"
    secrets.mkdir()
    (secrets / "token").write_text(token.strip())
    (secrets / "ca.crt").write_bytes(env.ca_file.read_bytes())
    a = Agent(tmp_path, "", kube_real.node)
    a.flag.touch()
    argv = [a.argv[0], "agent", "--config", str(a.config), "--node-name", kube_real.node, "--once"]
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", INCLUSTER, "sh",
         str(secrets), *argv],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={**os.environ, "KUBERNETES_SERVICE_HOST": "127.0.0.1",
             "KUBERNETES_SERVICE_PORT": str(env.port)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # the check's problem, reported
    assert kube_real.conditions(kube_real.node)["FlipProblem"]["status"] == "True"
    users = {e["user"]["username"] for e in env.audit(since=kube_real.since)}
    assert "system:serviceaccount:kube-system:node-healthcheck" in users
    # the bound token's own identity, not the static one: it carries the token's credential id
    bound = [
        e for e in env.audit(user="agent", since=kube_real.since)
        if "authentication.kubernetes.io/credential-id" in e["user"].get("extra", {})
    ]  # fmt: skip
    assert bound, "no request authenticated with the issued token"
