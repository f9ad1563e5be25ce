"""``healthcheck agent --dry-run`` changes nothing (issue 11, invariant 9), as real processes.

The repairs are those of the shipped ``config/agent.yaml`` (kubelet, kube-proxy and cri, repair
on), against real loopback ports where nothing listens (a real "connection refused", so the
kubelet and kube-proxy probes fail) and a CRI socket that does not exist. ``systemctl`` is the
recording stand-in of tests/component/conftest.py (no systemd runs here), which shows every
call the agent made: a dry run may ask ``show`` (read-only), never ``kill``.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from component.conftest import Systemctl

REPO = Path(__file__).resolve().parent.parent
NODE = "node-1"
REPAIRED = {"kubelet": "kubelet", "kube-proxy": "kube-proxy", "cri": "containerd"}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def systemctl(tmp_path):
    directory = tmp_path / "systemctl-standin"
    directory.mkdir()
    return Systemctl(directory)


@pytest.fixture
def node(tmp_path, systemctl):
    """The shipped config's repairing checks pointed at this test's stand-ins; env for them."""
    shipped = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
    state = tmp_path / "state"
    checks = []
    for stanza in shipped["checks"]:
        if stanza.get("checker") not in REPAIRED:
            continue  # the others read the machine's journal or its cloud metadata server
        options = stanza.setdefault("options", {})
        options.update(systemctl=systemctl.path, state_dir=str(state))
        if stanza["checker"] == "cri":
            options["cri_socket_path"] = str(tmp_path / "no-such-containerd.sock")
        checks.append(stanza)
    assert [c["checker"] for c in checks] == ["kubelet", "kube-proxy", "cri"]
    # Whatever a stanza says, a dry run must not repair: ask for a real repair explicitly.
    checks[0]["options"].update(enable_repair=True, dry_run_repair=False)
    shipped.update(checks=checks, metrics="", server="")
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(shipped))
    env = {
        "HOST_ADDRESS": "127.0.0.1",
        "KUBELET_PORT": str(closed_port()),
        "KUBEPROXY_PORT": str(closed_port()),
        "NODE_NAME": NODE,
    }
    return {"config": str(config), "env": env, "state": state}


def repairs(stdout: str) -> dict[str, dict]:
    """The first REPAIR record of each check."""
    found: dict[str, dict] = {}
    for line in stdout.splitlines():
        record = json.loads(line) if line.endswith("}") else {}
        if record.get("verb") == "REPAIR":
            found.setdefault(record["check"], record)
    return found


def test_dry_run_of_the_shipped_config_repairs_nothing_and_says_what_it_would(
    run_cli, node, systemctl
):
    proc = run_cli("agent", "--config", node["config"], "--once", "--dry-run", env=node["env"])
    assert proc.returncode == 1, proc.stderr
    assert systemctl.kills() == [], "a dry run killed a service"
    assert {c[0] for c in systemctl.calls()} == {"show"}
    assert not node["state"].exists(), "a dry run recorded a repair"
    found = repairs(proc.stdout)
    assert sorted(found) == sorted(REPAIRED)
    for check, unit in REPAIRED.items():
        assert found[check]["would_run"] is True
        assert found[check]["action"].endswith(f"systemctl kill --kill-who=main {unit}")
        assert found[check]["reason"] == "up 1h"
    assert "dry run: would systemctl kill --kill-who=main kubelet (up 1h)" in proc.stderr
    # What would be PATCHed is there too, as exact JSON.
    patch = next(json.loads(x) for x in proc.stdout.splitlines() if '"PATCH"' in x)
    types = {c["type"]: c["status"] for c in patch["body"]["status"]["conditions"]}
    assert types == {
        "KubeletUnhealthy": "True",
        "KubeProxyUnhealthy": "True",
        "ContainerRuntimeUnhealthy": "True",
    }


def test_dry_run_reports_the_cooldown_the_real_run_would_hit(run_cli, node, systemctl, bin_path):
    # A real repair first (health-checker, not a dry run), which records itself in the state dir.
    real = run_cli(
        f"--systemctl={systemctl.path}",
        f"--state-dir={node['state']}",
        "--cooldown-time=1m",
        script="health-checker",
        env=node["env"],
    )
    assert real.returncode == 1 and len(systemctl.kills()) == 1
    record = node["state"] / "repair-kubelet.json"
    before = record.read_bytes(), record.stat().st_mtime_ns
    systemctl.up_for(3600)
    proc = run_cli("agent", "--config", node["config"], "--once", "--dry-run", env=node["env"])
    assert proc.returncode == 1, proc.stderr
    assert len(systemctl.kills()) == 1
    kubelet = repairs(proc.stdout)["kubelet"]
    assert kubelet["would_run"] is False
    assert kubelet["reason"].startswith("not repairing: last repair ")
    assert kubelet["reason"].endswith("within the cooldown 1m")
    assert (record.read_bytes(), record.stat().st_mtime_ns) == before
    systemctl.up_for(1)  # up for less than the cooldown: the policy's own "no"
    proc = run_cli("agent", "--config", node["config"], "--once", "--dry-run", env=node["env"])
    assert repairs(proc.stdout)["kube-proxy"] == {
        "verb": "REPAIR",
        "check": "kube-proxy",
        "target": "kube-proxy.service",
        "action": "systemctl kill --kill-who=main kube-proxy",
        "would_run": False,
        "reason": "not repairing: up 1s, not longer than the cooldown 1m",
    }


def records(text: str, verb: str) -> list[dict]:
    lines = [json.loads(line) for line in text.splitlines() if line.endswith("}")]
    return [r for r in lines if r["verb"] == verb]


def test_long_running_dry_run_repairs_nothing_and_keeps_the_cooldown_in_memory(
    bin_path, node, systemctl, tmp_path
):
    config = yaml.safe_load(Path(node["config"]).read_text())
    config["checks"][0]["interval"] = "2s"  # kubelet: a second run within its 1m cooldown
    Path(node["config"]).write_text(yaml.safe_dump(config))
    out = tmp_path / "out.jsonl"
    with open(out, "w") as sink:
        agent = subprocess.Popen(
            [bin_path("healthcheck"), "agent", "--config", node["config"], "--dry-run"],
            env={**os.environ, **node["env"]},
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            kubelet = [r for r in records(out.read_text(), "REPAIR") if r["check"] == "kubelet"]
            if len(kubelet) >= 2 and set(repairs(out.read_text())) == set(REPAIRED):
                break
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert systemctl.kills() == []
    assert not node["state"].exists()
    assert set(repairs(out.read_text())) == set(REPAIRED)
    first, second = kubelet[:2]
    assert first["would_run"] is True
    # A real agent would have recorded the first repair; the preview says what it then would.
    assert second["would_run"] is False
    assert second["reason"].startswith("not repairing: this dry run's last would-be repair ")
    assert second["reason"].endswith(" ago, within the cooldown 1m")


PLUGIN = """#!/bin/sh
printf 'bad\\033[31m red\\nsecond line %s\\n' "$(head -c 300 /dev/zero | tr '\\0' x)"
exit 1
"""


@pytest.fixture
def plugin_config(tmp_path):
    script = tmp_path / "hostile.sh"
    script.write_text(PLUGIN)
    script.chmod(0o755)
    config = tmp_path / "plugin.yaml"
    config.write_text(
        'metrics: ""\nserver: ""\nchecks:\n'
        f"  - path: {script}\n    name: hostile\n    type: permanent\n"
        "    condition: HostileProblem\n    reason: HostileBad\n    healthyReason: HostileOK\n"
        "    maxOutputLength: 4096\n"
    )
    return str(config)


def test_table_form_is_readable_and_one_line_per_row(run_cli, plugin_config):
    proc = run_cli(
        "agent", "--config", plugin_config, "--once", "--dry-run", "--output=table",
        "--node-name", NODE,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == f"PATCH /api/v1/nodes/{NODE}/status"
    assert lines[1].split() == ["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"]
    row = lines[2].split(maxsplit=4)
    assert row[:3] == ["HostileProblem", "True", "HostileBad"]
    # The plugin's escape sequence and newline are gone; the message is cut to 80 bytes.
    assert row[4].startswith("bad [31m red second line xxx")
    assert len(row[4].encode()) <= 80 and row[4].endswith("…")
    assert "\x1b" not in proc.stdout
    assert "POST /api/v1/namespaces/default/events" in lines
    assert not any(line.startswith("{") for line in lines)


def test_default_form_is_json_in_a_pipe_and_a_table_on_a_terminal(run_cli, bin_path, plugin_config):
    argv = ["agent", "--config", plugin_config, "--once", "--dry-run", "--node-name", NODE]
    piped = run_cli(*argv)
    assert [json.loads(line)["verb"] for line in piped.stdout.splitlines()] == ["PATCH", "POST"]
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.run(
            [bin_path("healthcheck"), *argv],
            stdout=terminal,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            timeout=60,
        )
        os.close(terminal)
        terminal = -1
        out = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert proc.returncode == 1
    text = out.decode().replace("\r\n", "\n")
    assert text.startswith(f"PATCH /api/v1/nodes/{NODE}/status\n  CONDITION")


def test_output_without_dry_run_is_one_line_exit_2(run_cli, plugin_config):
    proc = run_cli("agent", "--config", plugin_config, "--once", "--output=table")
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "healthcheck agent: --output applies only with --dry-run\n"


@pytest.mark.parametrize(
    "name", ["Node-1", "node 1", "node\nrunning 0 checks for node x", "..", "a/b", "n" * 254]
)
@pytest.mark.parametrize("source", ["--node-name", "NODE_NAME"])
def test_a_node_name_kubernetes_would_not_take_is_one_line_and_exit_2(run_cli, node, name, source):
    """Before: the name went into API paths unchecked ('..' resolves to another path), into
    Event names and, newline and all, into the agent's log lines."""
    env = dict(node["env"])
    args = ["agent", "--config", node["config"], "--once", "--dry-run"]
    if source == "--node-name":
        args += ["--node-name", name]
    else:
        env["NODE_NAME"] = name
    proc = run_cli(*args, env=env)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "is not a Kubernetes node name" in proc.stderr
    assert source in proc.stderr


def test_a_dry_run_writes_no_state_file(run_cli, tmp_path):
    """Before: the conntrack check's drop baseline (and its lock file) was written by a dry run,
    so the real agent's next run lost the drops counted since its own last run."""
    from test_conntrack import _stat_row, make_proc

    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row(drop=7)])
    state = tmp_path / "state"
    config = tmp_path / "agent.yaml"
    options = {"proc_root": str(proc_root), "check_drops": True, "state_dir": str(state)}
    config.write_text(
        yaml.safe_dump(
            {"checks": [{"checker": "conntrack", "options": options}], "metrics": "", "server": ""}
        )
    )
    env = {"NODE_NAME": NODE}
    for _ in range(2):
        proc = run_cli("agent", "--config", str(config), "--once", "--dry-run", env=env)
        assert proc.returncode == 0, proc.stderr
    assert not state.exists() or list(state.iterdir()) == []


def test_every_agent_log_line_is_one_bounded_line(capsys):
    """The handler every agent logger goes through (a plugin's result message, a server's error
    text): before, a message with newlines became several log lines, forged ones included."""
    import logging

    from healthcheck._agent import main

    agent_logger = main.configure_logging()
    try:
        logging.getLogger("healthcheck._agent.scheduler").warning(
            "kubelet: %s", "PROBLEM: down\nhealthcheck agent: stopped\n" + "x" * (4 << 20)
        )
        logging.getLogger("healthcheck._agent.x").debug("below INFO: not shown")
        main.configure_logging()  # twice: still one handler, one line per record
        logging.getLogger("healthcheck._agent.remediation.controller").info("second")
    finally:
        for handler in list(agent_logger.handlers):
            agent_logger.removeHandler(handler)
    err = capsys.readouterr().err
    first, second = err.splitlines()
    assert err.count("\n") == 2 and len(first.encode()) <= main.LOG_LINE_LIMIT
    assert first.startswith("healthcheck agent: kubelet: PROBLEM: down healthcheck agent: stopped")
    assert second == "healthcheck agent: second"
