"""The agent honours the backoff it announced, on ``--once`` and after SIGTERM, says in its exit
code when a report never reached the API server, and always ends after SIGTERM (issue 11,
invariants 5 and 9). Real agent processes.

The API server is the TEST DOUBLE of tests/k8s_double.py, built here on purpose rather than
taken from a shared fixture: these tests need 429 with Retry-After, 503 and refusals on every
request, on demand, which no real API server produces.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .k8s_double import ApiServerDouble, write_kubeconfig

NODE = "node-1"
PLUGIN = """#!/bin/sh
if [ -e "{flag}" ]; then echo "flag is set"; exit 1; fi
echo fine
"""
RETRY = re.compile(r"retrying in (\d+\.\d)s$")
# The orderly shutdown ends within 5 s; the hard limit (main.SHUTDOWN_HARD_LIMIT) by 7 s.
ENDS_WITHIN = 15


@pytest.fixture
def api():
    """The API server double with node ``node-1``; faults are queued per test."""
    server = ApiServerDouble()
    server.add_node(NODE)
    yield server
    server.close()


@pytest.fixture
def agent_argv(api, tmp_path, bin_path):
    """``healthcheck agent`` with one permanent plugin that reports a problem while ``flag``."""
    flag = tmp_path / "flag"
    script = tmp_path / "flip.sh"
    script.write_text(PLUGIN.format(flag=flag))
    script.chmod(0o755)
    config = tmp_path / "agent.yaml"
    config.write_text(
        'metrics: ""\nserver: ""\nchecks:\n'
        f"  - path: {script}\n    name: flip\n    type: permanent\n    condition: FlipProblem\n"
        "    reason: FlipBad\n    healthyReason: FlipOK\n    healthyMessage: flip is fine\n"
        "    interval: 200ms\n"
    )
    argv = [
        bin_path("healthcheck"),
        "agent",
        "--config",
        str(config),
        "--kubeconfig",
        write_kubeconfig(tmp_path / "kubeconfig", api.url),
        "--node-name",
        NODE,
    ]
    return argv, flag


def run_once(argv) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*argv, "--once"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


# ------------------------------------------------------------------------------------- --once


def test_once_waits_the_backoff_it_announces_between_attempts(api, agent_argv):
    argv, flag = agent_argv
    flag.touch()
    api.inject(*[(503,)] * 1000)
    proc = run_once(argv)
    announced = [float(m.group(1)) for m in map(RETRY.search, proc.stderr.splitlines()) if m]
    arrivals = [r.at for r in api.requests]
    # Every announced retry is followed by the next request no sooner than announced (the
    # log rounds to 0.1 s), and every request but the first was announced.
    assert len(arrivals) == len(announced) + 1, proc.stderr
    for delay, (before, after) in zip(announced, itertools.pairwise(arrivals), strict=True):
        assert after - before >= delay - 0.06, (delay, after - before)
    # Backoff from 0.5 s doubling to 8 s fits at most six retries into the 10 s budget
    # (today's main: about 50 requests and 50 lines).
    assert len(arrivals) <= 8
    assert len(proc.stderr.splitlines()) <= 10
    assert "giving up" in proc.stderr


def test_once_exit_code_says_a_problem_was_not_reported(api, agent_argv):
    argv, flag = agent_argv
    flag.touch()  # the check finds a problem: exit 1 would hide that nobody was told
    api.inject(*[(503,)] * 1000)
    proc = run_once(argv)
    assert proc.returncode == 3, proc.stderr
    last = proc.stderr.splitlines()[-1]
    assert last.startswith("healthcheck agent: could not report the node status and 1 event ")
    assert "(checks found PROBLEM)" in last and "HTTP 503" in last


def test_once_exit_code_when_the_server_refuses_an_event(api, agent_argv):
    argv, flag = agent_argv
    flag.touch()
    route = api._route

    def refuse_events(method, path, content_type, body):
        if path.endswith("/events"):
            return 403, {"kind": "Status", "code": 403, "message": "events is forbidden"}
        return route(method, path, content_type, body)

    api._route = refuse_events
    proc = run_once(argv)
    assert api.conditions(NODE)["FlipProblem"]["status"] == "True"  # the PATCH did arrive
    assert proc.returncode == 3, proc.stderr
    assert "refused 1 event" in proc.stderr


def test_once_exit_codes_when_everything_was_reported(api, agent_argv):
    argv, flag = agent_argv
    assert run_once(argv).returncode == 0
    flag.touch()
    assert run_once(argv).returncode == 1


# ------------------------------------------------------------------------------------ SIGTERM


@contextlib.contextmanager
def running_then_failing(argv, api, flag, fault, stderr_path):
    """The agent, after one PATCH, with every request failing by ``fault`` and a change
    refused (its retry announced); killed on the way out if it is still running."""
    with open(stderr_path, "w") as log:
        agent = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL)
    try:
        assert api.wait_for(lambda d: d.nodes[NODE]["status"]["conditions"], 20)
        api.inject(*[fault] * 10_000)
        flag.touch()
        deadline = time.monotonic() + 20
        while "retrying in" not in stderr_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield agent
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()


def sigterm(agent, api, stderr_path) -> tuple[int, list, list[str]]:
    """SIGTERM; the exit code, the requests and the log lines that came after it."""
    lines_before = len(stderr_path.read_text().splitlines())
    requests_before = len(api.requests)
    agent.send_signal(signal.SIGTERM)
    code = agent.wait(ENDS_WITHIN)
    after = stderr_path.read_text().splitlines()[lines_before:]
    return code, api.requests[requests_before:], after


def test_sigterm_honours_a_retry_after_that_falls_past_the_deadline(api, agent_argv, tmp_path):
    argv, flag = agent_argv
    log = tmp_path / "stderr"
    with running_then_failing(argv, api, flag, (429, 60), log) as agent:
        assert "retrying in 60.0s" in log.read_text()
        code, requests, lines = sigterm(agent, api, log)
    assert code == 0
    assert requests == []  # the server asked for 60 s; the shutdown budget is 5 s
    assert not any("retrying" in line for line in lines), lines
    assert any("not sent: the node status and 1 event" in line for line in lines), lines


def test_sigterm_makes_one_final_attempt_and_announces_no_retry(api, agent_argv, tmp_path):
    argv, flag = agent_argv
    log = tmp_path / "stderr"
    with running_then_failing(argv, api, flag, (503,), log) as agent:
        code, requests, lines = sigterm(agent, api, log)
    assert code == 0
    # Pending: the status PATCH and one event; the PATCH fails, so the event is not tried.
    assert [(r.method, r.path) for r in requests] == [("PATCH", f"/api/v1/nodes/{NODE}/status")]
    assert not any("retrying" in line for line in lines), lines
    assert any(line.endswith("giving up: no time left to retry") for line in lines), lines


def test_sigterm_sends_what_is_pending_when_the_server_is_back(api, agent_argv, tmp_path):
    argv, flag = agent_argv
    log = tmp_path / "stderr"
    with running_then_failing(argv, api, flag, (503,), log) as agent:
        with api.lock:
            api.faults.clear()
        code, requests, _ = sigterm(agent, api, log)
    assert code == 0
    assert api.conditions(NODE)["FlipProblem"]["status"] == "True"
    assert len(requests) == 2, requests  # the PATCH and the event, once each


STUCK_PLUGIN = """
import atexit, time
from healthcheck import Checker, Condition, Result, hookimpl

# A plugin that never lets an interpreter finish: its exit handler sleeps for an hour.
atexit.register(time.sleep, 3600)

@hookimpl
def healthcheck_checkers():
    return [Checker("stuck", description="stuck at exit", check=lambda ctx: Result.ok(),
                    condition=Condition("StuckProblem", "Stuck", "NotStuck", "fine"))]
"""


def test_sigterm_ends_the_agent_even_when_a_plugin_blocks_the_exit(api, tmp_path, bin_path):
    site = tmp_path / "site"
    info = site / "stuck_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stuck-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[healthcheck]\nstuck = stuck_mod\n")
    (site / "stuck_mod.py").write_text(STUCK_PLUGIN)
    config = tmp_path / "agent.yaml"
    config.write_text('metrics: ""\nserver: ""\nchecks:\n  - checker: stuck\n')
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    argv = [bin_path("healthcheck"), "agent", "--config", str(config), "--kubeconfig", kubeconfig]
    agent = subprocess.Popen(
        [*argv, "--node-name", NODE],
        env={"PYTHONPATH": str(site), "PATH": str(Path(sys.executable).parent)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert api.wait_for(lambda d: d.nodes[NODE]["status"]["conditions"], 20)
        agent.send_signal(signal.SIGTERM)
        agent.wait(ENDS_WITHIN)  # raises TimeoutExpired if the agent outlives the bound
        stderr = agent.stderr.read()
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        agent.stderr.close()
    assert "stopped" in stderr
    assert "exiting now" in stderr
