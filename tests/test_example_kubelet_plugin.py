"""The third-party example of issue 14 (examples/healthcheck-kubelet-example): a kubelet-style
check written from the public API and the SDK alone, pip-installed, through every front door.

The kubelet is a real loopback HTTP server whose ``/healthz`` the test sets (200, 500, or an
answer later than the probe's timeout). ``systemctl`` is the recording stand-in of
tests/component/conftest.py (no systemd runs here), first on PATH where the plugin's default
``systemctl`` is used, so every call the repair made is visible.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from component.conftest import Systemctl
from plugin_install import pip_install_example

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "healthcheck-kubelet-example"
NAME = "kubelet-example"
RESTART = ["restart", "--", "kubelet"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The example pip-installed (as a user installs a plugin) into its own directory, built
    from a copy so that the build leaves nothing in the repository."""
    return pip_install_example(EXAMPLE.name, tmp_path_factory.mktemp("example"))


class _Healthz(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.server.mode == "slow":
            self.server.released.wait(5)
        status = 500 if self.server.mode == "fail" else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class _QuietServer(http.server.ThreadingHTTPServer):
    """The slow reply's client hung up long ago (the check timed out): writing to it fails, and
    that is not news. No trace on stderr, where a later test in this process would read it."""

    def handle_error(self, request, client_address) -> None:
        pass


@pytest.fixture
def kubelet():
    """A loopback ``/healthz``: ``kubelet.mode`` is ``ok``, ``fail`` (500) or ``slow`` (5 s)."""
    server = _QuietServer(("127.0.0.1", 0), _Healthz)
    server.mode, server.paths, server.released = "ok", [], threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.released.set()  # a slow reply ends now, and server_close() joins its thread
    server.shutdown()
    server.server_close()


@pytest.fixture
def systemctl(tmp_path):
    directory = tmp_path / "systemctl-standin"
    directory.mkdir()
    return Systemctl(directory)


@pytest.fixture
def env(site, kubelet, systemctl):
    """The plugin importable, the kubelet's address as the built-in reads it, the stand-in
    systemctl first on PATH."""
    return {
        "PYTHONPATH": site,
        "HOST_ADDRESS": "127.0.0.1",
        "KUBELET_PORT": str(kubelet.server_address[1]),
        "PATH": f"{systemctl.dir}{os.pathsep}{os.environ['PATH']}",
    }


def test_check_exit_codes_and_messages(run_cli, env, kubelet, systemctl):
    def check(*args):
        proc = run_cli("check", NAME, "--enable-repair=false", *args, env=env)
        return proc.returncode, proc.stdout

    assert check() == (0, "kubelet is healthy\n")
    assert kubelet.paths == ["/healthz"]
    kubelet.mode = "fail"
    assert check() == (1, "kubelet /healthz: HTTP 500 Internal Server Error\n")
    kubelet.mode = "slow"
    code, out = check("--health-check-timeout=300ms", "--max-output-length=500")
    assert code == 1, out
    assert out.startswith("kubelet: ") and "timed out" in out, out
    # Bad input: one line, exit 2, nothing probed.
    kubelet.paths.clear()
    code, out = check("--url", "ftp://127.0.0.1/healthz")
    assert code == 2 and out.count("\n") == 1
    assert out.startswith("healthcheck check kubelet-example: argument --url: unsupported URL")
    assert kubelet.paths == []
    assert systemctl.calls() == [], "repair is off"


def test_list_and_status_show_it(run_cli, env):
    rows = json.loads(run_cli("list", "--json", env=env).stdout)
    mine = [r for r in rows if r["name"] == NAME]
    assert mine == [
        {
            "name": NAME,
            "distribution": "healthcheck-kubelet-example",
            "plugin": NAME,
            "description": "kubelet /healthz answers 200 (an example plugin), restarting the "
            "unit if not",
            "status": "ok",
            "error": None,
        }
    ]
    assert any(r["name"] == "kubelet" and r["status"] == "ok" for r in rows), "no clash"
    status = json.loads(run_cli("status", "--json", env=env, timeout=120).stdout)
    row = next(r for r in status if r["checker"] == NAME)
    assert (row["status"], row["message"]) == ("OK", "kubelet is healthy")


def test_the_generated_npd_config_runs_it(run_cli, env, kubelet, systemctl, tmp_path, bin_path):
    out = tmp_path / "npd"
    command = bin_path("healthcheck")
    proc = run_cli("npd-config", NAME, "--output-dir", str(out), "--command", command, env=env)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / f"healthcheck-{NAME}.json").read_text())
    assert doc["conditions"] == [
        {
            "type": "KubeletExampleUnhealthy",
            "reason": "KubeletExampleIsHealthy",
            "message": "kubelet answers /healthz",
        }
    ]
    (rule,) = doc["rules"]
    assert (rule["path"], rule["args"]) == (command, ["check", NAME])

    def npd_runs_it():
        proc = subprocess.run(
            [rule["path"], *rule["args"]],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        )
        return proc.returncode, proc.stdout

    assert npd_runs_it() == (0, "kubelet is healthy\n")
    kubelet.mode = "fail"
    systemctl.up_for(1)  # repair is on in the rule; a unit up 1 s is within the cooldown
    assert npd_runs_it() == (1, "kubelet /healthz: HTTP 500 Internal Server Error\n")
    assert [c[0] for c in systemctl.calls()] == ["show"], "the rule's repair asked the uptime"


def _hc(run_cli, env, tmp_path, *args):
    return run_cli(
        "check", NAME, "--cooldown-time=1m", f"--state-dir={tmp_path / 'state'}", *args, env=env
    )


def test_repair_restarts_once_then_waits_out_the_cooldown(
    run_cli, env, kubelet, systemctl, tmp_path
):
    kubelet.mode = "fail"
    systemctl.up_for(3600)
    first = _hc(run_cli, env, tmp_path)
    assert first.returncode == 1
    assert [c for c in systemctl.calls() if c[0] != "show"] == [RESTART]
    assert "kubelet-example: repaired: systemctl restart kubelet (up 1h)" in first.stderr
    # The stand-in still says "up 1h" (a stale uptime): the recorded repair stops a second one.
    second = _hc(run_cli, env, tmp_path)
    assert second.returncode == 1
    assert [c for c in systemctl.calls() if c[0] != "show"] == [RESTART]
    assert "within the cooldown 1m" in second.stderr
    # A healthy kubelet is never repaired, whatever its uptime.
    kubelet.mode = "ok"
    assert _hc(run_cli, env, tmp_path / "other").returncode == 0
    assert [c for c in systemctl.calls() if c[0] != "show"] == [RESTART]


def test_repair_waits_for_the_unit_to_be_up_longer_than_the_cooldown(
    run_cli, env, kubelet, systemctl, tmp_path
):
    kubelet.mode = "fail"
    systemctl.up_for(30)
    proc = _hc(run_cli, env, tmp_path)
    assert proc.returncode == 1
    assert [c[0] for c in systemctl.calls()] == ["show"]
    assert "not repairing: up 30s, not longer than the cooldown 1m" in proc.stderr


def test_dry_run_repair_says_what_it_would_and_does_nothing(
    run_cli, env, kubelet, systemctl, tmp_path
):
    kubelet.mode = "fail"
    proc = _hc(run_cli, env, tmp_path, "--dry-run-repair")
    assert proc.returncode == 1
    assert [c[0] for c in systemctl.calls()] == ["show"]
    assert "dry run: would systemctl restart kubelet (up 1h)" in proc.stderr
    assert not (tmp_path / "state").exists()


def _agent(run_cli, env, tmp_path, systemctl):
    config = tmp_path / "agent.yaml"
    stanza = {
        "checker": NAME,
        "options": {
            "systemctl": systemctl.path,
            "state_dir": str(tmp_path / "state"),
            "cooldown_time": "1m",
            "health_check_timeout": "2s",
        },
    }
    config.write_text(yaml.safe_dump({"metrics": "", "server": "", "checks": [stanza]}))
    proc = run_cli(
        "agent", "--config", str(config), "--once", "--dry-run", env={**env, "NODE_NAME": "node-1"}
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.endswith("}")]
    patch = next(r for r in records if r["verb"] == "PATCH")
    conditions = {c["type"]: c for c in patch["body"]["status"]["conditions"]}
    return (
        proc,
        conditions["KubeletExampleUnhealthy"],
        [r for r in records if r["verb"] == "REPAIR"],
    )


def test_the_agent_reports_its_condition_and_never_repairs_in_a_dry_run(
    run_cli, env, kubelet, systemctl, tmp_path
):
    proc, condition, repairs = _agent(run_cli, env, tmp_path, systemctl)
    assert proc.returncode == 0, proc.stderr
    assert (condition["status"], condition["reason"]) == ("False", "KubeletExampleIsHealthy")
    assert repairs == []

    kubelet.mode = "fail"
    proc, condition, repairs = _agent(run_cli, env, tmp_path, systemctl)
    assert proc.returncode == 1, proc.stderr
    assert condition["status"] == "True"
    assert condition["reason"] == "KubeletExampleUnhealthy"
    assert condition["message"] == "kubelet /healthz: HTTP 500 Internal Server Error"
    assert repairs == [
        {
            "verb": "REPAIR",
            "check": NAME,
            "target": "kubelet",
            "action": "systemctl restart kubelet",
            "would_run": True,
            "reason": "up 1h",
        }
    ]
    assert [c[0] for c in systemctl.calls()] == ["show"], "a dry run restarted the unit"
    assert not (tmp_path / "state").exists()
