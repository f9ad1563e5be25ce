"""The one-shot maintenance-events path stays lean: what it imports, measured with -X importtime."""

from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator

BANNED = (
    "pluggy",
    "importlib.metadata",
    "http.client",
    "urllib",
    "email",
    "kubernetes",
    "prometheus_client",
    "grpc",
    "h2",
    "yaml",
    # what this path deliberately avoids (see the comments at each import)
    "socket",
    "selectors",
    "datetime",
    "encodings.idna",
)


def _imported(argv: list[str]) -> tuple[set[str], subprocess.CompletedProcess]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, timeout=60
    )
    names = {
        line.split("|")[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:") and "cumulative" not in line
    }
    return names, proc


def test_one_shot_imports_nothing_heavy(bin_path, tmp_path):
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "sys_vendor").write_text("Alibaba Cloud\n")
    event = {
        "event-id": "e-1",
        "event-type": "SystemMaintenance.Reboot",
        "event-status": "Scheduled",
        "not-before": "2026-11-23T02:00:00Z",
    }
    with MetadataEmulator("alibaba", [event]) as emu:
        emu.require_token = True
        argv = [
            bin_path("healthcheck"),
            "check",
            "maintenance-events",
            "--dmi-root",
            str(dmi),
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
        ]
        first, proc = _imported(argv)
        assert proc.returncode == 1, proc.stdout
        steady, proc = _imported(argv)
        assert proc.returncode == 1, proc.stdout
    assert "healthcheck_plugins.maintenance_events.metadata.alibaba" in first
    for name in BANNED:
        assert not any(m == name or m.startswith(name + ".") for m in first | steady), name
    # other providers' modules are not loaded, and with the token cached no lock is taken
    assert (
        not {
            "healthcheck_plugins.maintenance_events.metadata.aws",
            "healthcheck_plugins.maintenance_events.metadata.gcp",
        }
        & steady
    )
    assert "contextlib" not in steady
