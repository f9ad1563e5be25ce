"""``healthcheck agent`` as a real process against an API server.

Tests taking ``kube`` run against the real kube-apiserver (tests/envtest.py, the agent as the
shipped ServiceAccount) and against the double (tests/k8s_double.py); the double alone stalls
every answer, which the real server cannot be made to do on demand."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from kube_backends import DoubleBackend

NODE = "node-1"
FLIP = """#!/bin/sh
if [ -e "{flag}" ]; then echo "$(date +%s.%N) bad" >> "{log}"; echo "flag is set"; exit 1; fi
echo "$(date +%s.%N) ok" >> "{log}"
echo "all good"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _once(setup) -> list[str]:
    """``healthcheck agent --once`` against the server, as a systemd timer would run it."""
    return [
        "agent",
        "--config",
        setup["config"],
        "--kubeconfig",
        setup["kubeconfig"],
        "--once",
        "--node-name",
        setup["node"],
    ]


@pytest.fixture
def setup(kube, tmp_path):
    return make_setup(kube, tmp_path)


@pytest.fixture
def double_setup(double, tmp_path):
    return make_setup(DoubleBackend(double), tmp_path)


def make_setup(kube, tmp_path) -> dict:
    flag, log = tmp_path / "flag", tmp_path / "runs.log"
    script = tmp_path / "flip.sh"
    script.write_text(FLIP.format(flag=flag, log=log))
    script.chmod(0o755)
    ok = tmp_path / "ok.sh"
    ok.write_text("#!/bin/sh\necho fine\n")
    ok.chmod(0o755)
    kubeconfig = kube.kubeconfig(tmp_path)
    metrics, server = free_port(), free_port()
    config = tmp_path / "agent.yaml"
    config.write_text(
        f"metrics: 127.0.0.1:{metrics}\nserver: 127.0.0.1:{server}\n"
        "checks:\n"
        f"  - path: {script}\n    name: flip\n    type: permanent\n    condition: FlipProblem\n"
        "    reason: FlipBad\n    healthyReason: FlipOK\n    healthyMessage: flip is fine\n"
        "    interval: 200ms\n"
        f"  - path: {ok}\n    type: temporary\n    reason: NeverSeen\n"
    )
    return {
        "config": str(config),
        "kubeconfig": kubeconfig,
        "flag": flag,
        "log": log,
        "metrics": metrics,
        "server": server,
        "tmp": tmp_path,
        "node": kube.node,
    }


def agent_argv(bin_path, setup, *extra):
    return [
        bin_path("healthcheck"),
        "agent",
        "--config",
        setup["config"],
        "--kubeconfig",
        setup["kubeconfig"],
        "--node-name",
        setup["node"],
        *extra,
    ]


def test_once_reports_and_exits_with_the_worst_status(run_cli, kube, setup):
    setup["flag"].touch()
    proc = run_cli(
        "agent",
        "--config",
        setup["config"],
        "--kubeconfig",
        setup["kubeconfig"],
        "--once",
        env={"NODE_NAME": setup["node"]},
    )
    assert proc.returncode == 1, proc.stderr
    cond = kube.conditions(kube.node)["FlipProblem"]
    assert (cond["status"], cond["reason"], cond["message"]) == ("True", "FlipBad", "flag is set")
    (event,) = kube.events()
    assert event["message"] == (
        'Node condition FlipProblem is now: True, reason: FlipBad, message: "flag is set"'
    )
    setup["flag"].unlink()
    proc = run_cli(*_once(setup))
    assert proc.returncode == 0, proc.stderr
    assert kube.conditions(kube.node)["FlipProblem"]["status"] == "False"
    writes = sorted(c.method for c in kube.writes())
    assert writes == ["PATCH", "PATCH", "POST", "POST"]  # two PATCHes, two events: nothing else


def test_once_with_unreachable_server_exits_3_not_reported_with_one_line(run_cli, kube, setup):
    kube.go_down()
    try:
        proc = run_cli(*_once(setup))
    finally:
        kube.come_back()
    assert proc.returncode == 3  # not reported: the --once exit code for it (README)
    assert "could not report" in proc.stderr and "Traceback" not in proc.stderr


def test_dry_run_prints_patch_and_events_and_sends_nothing(run_cli, kube, setup):
    setup["flag"].touch()
    node = setup["node"]
    proc = run_cli("agent", "--config", setup["config"], "--once", "--dry-run", "--node-name", node)
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    verbs = sorted((r["verb"], r["path"]) for r in records)
    assert verbs == [
        ("PATCH", f"/api/v1/nodes/{node}/status"),
        ("POST", "/api/v1/namespaces/default/events"),
    ]
    patch = next(r for r in records if r["verb"] == "PATCH")
    assert patch["body"]["status"]["conditions"][0]["status"] == "True"
    assert kube.requests() == []


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read().decode()


def start_agent(bin_path, setup, *extra) -> subprocess.Popen:
    """The agent as a process; its stderr goes to a file (a pipe nobody drains could fill)."""
    log = open(setup["tmp"] / "agent.stderr", "ab")  # noqa: SIM115 - the child holds it
    try:
        return subprocess.Popen(
            agent_argv(bin_path, setup, *extra), stderr=log, stdin=subprocess.DEVNULL
        )
    finally:
        log.close()


def agent_stderr(setup) -> str:
    return (setup["tmp"] / "agent.stderr").read_text(errors="replace")


def test_long_running_agent_endpoints_and_sigterm_flushes_the_last_change(bin_path, kube, setup):
    agent = start_agent(bin_path, setup)
    try:
        # Generous: the start imports the Kubernetes client, slow on a loaded machine.
        assert kube.wait_for(lambda k: k.conditions(k.node), 30), agent_stderr(setup)
        assert get(setup["server"], "/healthz") == "ok"
        conditions = json.loads(get(setup["server"], "/conditions"))
        assert [(c["type"], c["status"]) for c in conditions] == [("FlipProblem", "False")]
        metrics = get(setup["metrics"], "/metrics")
        assert 'problem_gauge{reason="FlipOK",type="FlipProblem"} 0.0' in metrics
        assert 'problem_counter{reason="NeverSeen"} 0.0' in metrics
        assert 'healthcheck_check_status{check="flip"} 0.0' in metrics
        assert 'healthcheck_check_duration_seconds_count{check="flip"}' in metrics
        # A change, then SIGTERM before the batch window has passed: it must still be sent.
        setup["flag"].touch()
        deadline = time.monotonic() + 10
        while "bad" not in setup["log"].read_text() and time.monotonic() < deadline:
            time.sleep(0.005)
        agent.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert agent.wait(6) == 0, agent_stderr(setup)
        assert time.monotonic() - started < 5
        cond = kube.conditions(kube.node)["FlipProblem"]
        assert cond["status"] == "True", agent_stderr(setup)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_sigterm_with_a_hanging_server_still_exits_0_within_5s(bin_path, double, double_setup):
    setup = double_setup
    agent = start_agent(bin_path, setup)
    try:
        assert double.wait_for(lambda d: d.nodes[NODE]["status"]["conditions"], 30)
        double.inject(*[("hang", 30)] * 50)
        setup["flag"].touch()
        time.sleep(1.0)
        agent.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert agent.wait(6) == 0
        assert time.monotonic() - started < 5
    finally:
        double.release.set()
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def test_metrics_port_in_use_is_one_line_exit_2(run_cli, double_setup):
    setup = double_setup
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", setup["metrics"]))
        sock.listen()
        proc = run_cli(
            "agent", "--config", setup["config"], "--dry-run", "--node-name", NODE, timeout=20
        )
    assert proc.returncode == 2
    assert f"metrics address 127.0.0.1:{setup['metrics']}: cannot listen" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_agent_is_not_imported_by_the_one_shot_path():
    code = (
        "import sys; from healthcheck import _cli; _cli.main(['check', 'conntrack']); "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('kubernetes', 'prometheus_client', 'yaml') or m.startswith('healthcheck._agent')]; "
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
