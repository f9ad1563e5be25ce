"""config/health-checker-*.json: generated from the checkers' declarations, equal in meaning to
NPD's shipped configs (spec 2.10), and never drifting from what npd-config writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthcheck._npdconfig import validate_document

CONFIG = Path(__file__).resolve().parents[2] / "config"
FILES = {
    "health-checker-kubelet.json": (
        "KubeletUnhealthy",
        "KubeletUnhealthy",
        "KubeletIsHealthy",
        "kubelet on the node is functioning properly",
        [
            "--component=kubelet",
            "--enable-repair=true",
            "--cooldown-time=1m",
            "--loopback-time=0",
            "--health-check-timeout=10s",
        ],
    ),
    "health-checker-docker.json": (
        "ContainerRuntimeUnhealthy",
        "DockerUnhealthy",
        "ContainerRuntimeIsHealthy",
        "Container runtime on the node is functioning properly",
        [
            "--component=docker",
            "--enable-repair=true",
            "--cooldown-time=2m",
            "--health-check-timeout=60s",
        ],
    ),
    "health-checker-containerd.json": (
        "ContainerRuntimeUnhealthy",
        "ContainerdUnhealthy",
        "ContainerRuntimeIsHealthy",
        "Container runtime on the node is functioning properly",
        [
            "--component=cri",
            "--enable-repair=true",
            "--cooldown-time=2m",
            "--cri-timeout=10s",
            "--health-check-timeout=60s",
        ],
    ),
    "health-checker-kube-proxy.json": (
        "KubeProxyUnhealthy",
        "KubeProxyUnhealthy",
        "KubeProxyIsHealthy",
        "kube-proxy on the node is functioning properly",
        [
            "--component=kube-proxy",
            "--enable-repair=true",
            "--cooldown-time=1m",
            "--health-check-timeout=10s",
        ],
    ),
}


def test_shipped_configs_match_generated(run_cli, tmp_path):
    proc = run_cli(
        "npd-config",
        "kubelet",
        "kube-proxy",
        "docker",
        "cri",
        "--output-dir",
        str(tmp_path),
        "--command",
        "/usr/local/bin/healthcheck",
    )
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.name for p in tmp_path.iterdir())
    assert generated == sorted(FILES)
    for name in FILES:
        committed = (CONFIG / name).read_text()
        assert committed == (tmp_path / name).read_text(), f"config/{name} drifted: regenerate"


@pytest.mark.parametrize("name", sorted(FILES))
def test_configs_mean_what_npd_ships(name):
    ctype, reason, healthy_reason, healthy_message, args = FILES[name]
    doc = json.loads((CONFIG / name).read_text())
    assert validate_document(doc) == []
    assert doc["source"] == "health-checker"
    assert doc["pluginConfig"]["invoke_interval"] == "10s"
    assert doc["pluginConfig"]["timeout"] == "3m"
    assert doc["pluginConfig"]["concurrency"] == 1
    assert doc["conditions"] == [
        {"type": ctype, "reason": healthy_reason, "message": healthy_message}
    ]
    (rule,) = doc["rules"]
    assert rule["type"] == "permanent"
    assert (rule["condition"], rule["reason"]) == (ctype, reason)
    assert rule["path"] == "/usr/local/bin/health-checker"
    assert rule["args"] == args
    assert rule["timeout"] == "3m"


@pytest.mark.parametrize("name", sorted(FILES))
def test_shipped_args_are_accepted_by_our_health_checker(run_cli, name, tmp_path):
    args = json.loads((CONFIG / name).read_text())["rules"][0]["args"]
    proc = run_cli(
        *args,
        "--enable-repair=false",
        "--health-check-timeout=200ms",
        f"--state-dir={tmp_path}",
        script="health-checker",
        env={"KUBELET_PORT": "1", "KUBEPROXY_PORT": "1"},
    )
    # Parsed and run: healthy or unhealthy depending on what runs here, never a flag error.
    assert proc.returncode in (0, 1), proc.stdout
    assert proc.stdout in ("",) or "was found unhealthy; repair flag : false" in proc.stdout
