"""NPD's own daemon runs the configs ``healthcheck npd-config`` generates (health-checker and
log-counter drop-ins, and a ``healthcheck check`` custom plugin) against the real apiserver; the
conditions it sets are the ones our agent sets from config/agent.yaml for the same checks.

Both run with the shipped ServiceAccount's rights, the same environment (the kubelet and
kube-proxy health ports pointed at loopback servers: one healthy, one failing) and a stand-in
``systemctl`` first on PATH, so a repair can never touch this machine's services.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent
NPD_CONFIGS = (
    "health-checker-kubelet.json",
    "health-checker-kube-proxy.json",
    "kernel-monitor-counter.json",
    "healthcheck-conntrack.json",
)
# The config/agent.yaml stanzas that are the same checks as those NPD configs.
AGENT_STANZAS = {"kubelet", "kube-proxy", "frequent-unregister-netdevice", "conntrack"}
COMPARED = ("type", "status", "reason", "message")


@pytest.fixture(scope="session")
def npd_daemon():
    """NPD's node-problem-detector binary; skipped/failed like the envtest fixture."""
    from shared_assets import AssetsMissing, assets, shared_present

    try:
        return assets("npd") / "node-problem-detector"
    except AssetsMissing as exc:
        message = f"NPD side by side: {exc}"
        if os.environ.get("CI") == "true" and shared_present("npd"):
            pytest.fail(f"{message} (CI=true and ../shared/npd exists: it must not skip)")
        pytest.skip(message)


class Health(http.server.BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        body = b"ok" if self.code == 200 else b"unhealthy"
        self.send_response(self.code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        pass


def serve(code: int) -> http.server.HTTPServer:
    handler = type("Handler", (Health,), {"code": code})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def environment(tmp_path):
    standin = tmp_path / "standin"
    standin.mkdir()
    systemctl = standin / "systemctl"
    systemctl.write_text("#!/bin/sh\necho 'systemctl stand-in: no systemd here' >&2\nexit 1\n")
    systemctl.chmod(0o755)
    kubelet, kube_proxy = serve(200), serve(503)
    env = dict(os.environ)
    env.update(
        PATH=f"{standin}:{env.get('PATH', '/usr/bin:/bin')}",
        HOST_ADDRESS="127.0.0.1",
        KUBELET_PORT=str(kubelet.server_address[1]),
        KUBEPROXY_PORT=str(kube_proxy.server_address[1]),
    )
    # (the environment, and the kube-proxy server's handler class, whose answer a test flips)
    yield env, kube_proxy.RequestHandlerClass
    kubelet.shutdown()
    kube_proxy.shutdown()


def ours(conditions: dict) -> dict:
    return {t: tuple(c.get(k) for k in COMPARED) for t, c in conditions.items()}


def settled(env, node: str, want: set[str], timeout: float = 30.0) -> dict:
    """The node's conditions once all ``want`` types have left NPD's initial state and two
    reads 1 s apart agree."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        now = ours(env.node_conditions(node))
        if want <= set(now) and now == last and now["KubeProxyUnhealthy"][1] == "True":
            return now
        last = now
        time.sleep(1.0)
    return last or {}


def wait(predicate, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.5)
    return False


def last_event(env, node: str, reason: str) -> tuple:
    status, listing = env.request(
        "GET", f"/api/v1/events?fieldSelector=involvedObject.name%3D{node},reason%3D{reason}"
    )
    assert status == 200, listing
    items = listing.get("items") or []
    assert items, f"no {reason} event for {node}"
    event = items[-1]
    return event["type"], event["reason"], event["message"], event["involvedObject"]["kind"]


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_npd_daemon_with_generated_configs_sets_the_conditions_our_agent_sets(
    shipped_rbac, npd_daemon, environment, tmp_path
):
    env = shipped_rbac
    environment, kube_proxy = environment
    configs = tmp_path / "npd"
    subprocess.run(
        [str(BIN / "healthcheck"), "npd-config", "--output-dir", str(configs),
         "--command", str(BIN / "healthcheck")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    npd_node, agent_node = "npd-side", "agent-side"
    for node in (npd_node, agent_node):
        env.create_node(node)
    npd = agent = None
    try:
        kubeconfig = env.kubeconfig("agent")
        with open(tmp_path / "npd.log", "wb") as log:
            npd = subprocess.Popen(
                [
                    str(npd_daemon),
                    f"--apiserver-override={env.url}?inClusterConfig=false&auth={kubeconfig}",
                    f"--hostname-override={npd_node}",
                    "--config.custom-plugin-monitor="
                    + ",".join(str(configs / name) for name in NPD_CONFIGS),
                    "--prometheus-port=0",
                    "--port=0",
                ],
                env=environment,
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
        config = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
        config["checks"] = [
            c for c in config["checks"] if c.get("name", c.get("checker")) in AGENT_STANZAS
        ]
        assert len(config["checks"]) == len(AGENT_STANZAS)
        config.update(metrics="", server="")
        (tmp_path / "agent.yaml").write_text(yaml.safe_dump(config))
        with open(tmp_path / "agent.log", "wb") as log:
            agent = subprocess.Popen(
                [str(BIN / "healthcheck"), "agent", "--config", str(tmp_path / "agent.yaml"),
                 "--kubeconfig", str(kubeconfig), "--node-name", agent_node],
                env=environment, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        want = {"KubeletUnhealthy", "KubeProxyUnhealthy", "FrequentUnregisterNetDevice"}
        npd_conditions = settled(env, npd_node, want)
        agent_conditions = settled(env, agent_node, want)
        logs = (tmp_path / "npd.log").read_text(errors="replace")[-2000:]
        assert want <= set(npd_conditions), logs
        assert npd_conditions == agent_conditions, (
            json.dumps({"npd": npd_conditions, "agent": agent_conditions}, indent=1),
            (tmp_path / "agent.log").read_text(errors="replace")[-2000:],
        )
        assert npd_conditions["KubeletUnhealthy"][1] == "False"
        assert npd_conditions["KubeProxyUnhealthy"][1:3] == ("True", "KubeProxyUnhealthy")
        # kube-proxy recovers: both flip the condition back and record the same Event.
        kube_proxy.code = 200
        recovered = ("KubeProxyUnhealthy", "False", "KubeProxyIsHealthy")

        def flipped(node):
            return ours(env.node_conditions(node))["KubeProxyUnhealthy"][:3] == recovered

        assert wait(lambda: flipped(npd_node) and flipped(agent_node), 40)
        assert ours(env.node_conditions(npd_node)) == ours(env.node_conditions(agent_node))
        npd_event, agent_event = (
            last_event(env, node, "KubeProxyIsHealthy") for node in (npd_node, agent_node)
        )
        assert npd_event == agent_event
        assert npd_event[2].startswith("Node condition KubeProxyUnhealthy is now: False")
        assert npd.poll() is None and agent.poll() is None
    finally:
        for proc in (npd, agent):
            if proc is not None:
                stop(proc)
        for node in (npd_node, agent_node):
            env.delete_node(node)
