"""Shipped files of the maintenance-events feature: the NPD configs and the systemd units."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from healthcheck._npdconfig import validate_document

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "config"
UNITS = REPO / "packaging" / "systemd"
REBOOT_RULE = (
    "Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled.*|"
    "Ecs event type is: SystemMaintenance.Reboot,event status is: Inquiring.*"
)


def test_npd_config_matches_what_npd_config_generates(run_cli, tmp_path):
    proc = run_cli(
        "npd-config",
        "maintenance-events",
        "--output-dir",
        str(tmp_path),
        "--command",
        "/usr/local/bin/healthcheck",
    )
    assert proc.returncode == 0, proc.stderr
    name = "healthcheck-maintenance-events.json"
    generated = (tmp_path / name).read_text()
    assert generated == (CONFIG / name).read_text(), "regenerate config/ with npd-config"
    doc = json.loads(generated)
    assert validate_document(doc) == []
    (rule,) = doc["rules"]
    assert rule["type"] == "permanent" and rule["condition"] == "MaintenanceScheduled"
    assert rule["args"] == ["check", "maintenance-events"]
    assert doc["conditions"] == [
        {
            "type": "MaintenanceScheduled",
            "reason": "NoMaintenanceScheduled",
            "message": "No disruptive maintenance event is pending",
        }
    ]


def test_host_event_json_is_the_spec_config():
    doc = json.loads((CONFIG / "host_event.json").read_text())
    assert doc["plugin"] == "filelog"
    assert doc["pluginConfig"] == {
        "timestamp": "^.{19}",
        "message": "Ecs event type is: .*",
        "timestampFormat": "2006-01-02 15:04:05",
    }
    assert doc["logPath"] == "/var/log/host_event.log"
    assert (doc["lookback"], doc["bufferSize"], doc["source"]) == ("5m", 10, "host-event")
    assert doc["conditions"] == [
        {
            "type": "HostEventRebootAfter48",
            "reason": "HostEventWillRebootAfter48",
            "message": "The Host Is Running In Good Condition",
        }
    ]
    assert doc["rules"] == [
        {"type": "temporary", "reason": "HostEventRebootAfter48temporary", "pattern": REBOOT_RULE},
        {
            "type": "permanent",
            "condition": "HostEventRebootAfter48",
            "reason": "HostEventRebootAfter48Permanent",
            "pattern": REBOOT_RULE,
        },
    ]
    re.compile(doc["rules"][0]["pattern"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_units_verify(tmp_path):
    healthcheck = str(Path(sys.executable).parent / "healthcheck")
    for name in ("healthcheck-host-event-log.service", "healthcheck-host-event-log.timer"):
        text = (UNITS / name).read_text()
        # verify checks that ExecStart exists: point it at the installed command
        (tmp_path / name).write_text(text.replace("/usr/local/bin/healthcheck", healthcheck))
    service = (UNITS / "healthcheck-host-event-log.service").read_text()
    assert "ExecStart=/usr/local/bin/healthcheck host-event-log " in service
    proc = subprocess.run(
        ["systemd-analyze", "verify", *(str(p) for p in sorted(tmp_path.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # unknown keys are only warnings: none allowed
