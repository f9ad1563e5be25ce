"""healthcheck.sdk.systemd against a systemctl stand-in (no systemd runs here)."""

from __future__ import annotations

import time

import pytest

from healthcheck.sdk import systemd


def test_monotonic_uptime_is_preferred(systemctl):
    systemctl.up_for(42)
    uptime = systemd.unit_uptime("kubelet", systemctl=systemctl.path)
    assert 42 <= uptime < 52
    assert systemctl.calls() == [
        ["show", "--property=InactiveExitTimestampMonotonic,InactiveExitTimestamp", "--", "kubelet"]
    ]


def test_wall_clock_fallback_in_utc(systemctl):
    started = time.gmtime(time.time() - 3600)
    stamp = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", started)
    systemctl.show_text(f"InactiveExitTimestamp={stamp}\n")
    assert 3599 <= systemd.unit_uptime("kubelet", systemctl=systemctl.path) < 3610


def test_wall_clock_in_an_unknown_zone_is_refused(systemctl):
    systemctl.show_text("InactiveExitTimestamp=Mon 2024-01-01 10:00:00 XYZT\n")
    with pytest.raises(systemd.SystemdError, match="time zone 'XYZT'"):
        systemd.unit_uptime("kubelet", systemctl=systemctl.path)


@pytest.mark.parametrize(
    "text",
    [
        "InactiveExitTimestampMonotonic=0\nInactiveExitTimestamp=\n",
        "InactiveExitTimestamp=n/a\n",
        "InactiveExitTimestamp=\n",
    ],
)
def test_never_started(systemctl, text):
    systemctl.show_text(text)
    with pytest.raises(systemd.SystemdError, match="has never started"):
        systemd.unit_uptime("kubelet", systemctl=systemctl.path)


def test_systemctl_failing_names_the_command(systemctl):
    systemctl.exit_code(1)
    with pytest.raises(
        systemd.SystemdError, match=r"systemctl kill --kill-who=main failed \(exit 1\)"
    ):
        systemd.kill_main("kubelet", systemctl=systemctl.path)


def test_missing_systemctl_is_unreachable(tmp_path):
    with pytest.raises(systemd.SystemdError, match="systemd not reachable: cannot start"):
        systemd.unit_uptime("kubelet", systemctl=str(tmp_path / "absent"))


def test_hanging_systemctl_is_bounded(tmp_path):
    script = tmp_path / "systemctl"
    script.write_text("#!/bin/sh\nsleep 30\n")
    script.chmod(0o755)
    start = time.monotonic()
    with pytest.raises(systemd.SystemdError, match="timed out"):
        systemd.unit_uptime("kubelet", systemctl=str(script), timeout=0.5)
    assert time.monotonic() - start < 5


def test_kill_argv(systemctl):
    argv = systemd.kill_main("docker", signal="SIGUSR1", systemctl=systemctl.path)
    assert argv == [systemctl.path, "kill", "--kill-who=main", "--signal=SIGUSR1", "--", "docker"]
    assert systemctl.kills() == [["kill", "--kill-who=main", "--signal=SIGUSR1", "--", "docker"]]


@pytest.mark.parametrize("value", ["²", "٣٠٠٠", "1_000", "9" * 400])
def test_a_monotonic_stamp_that_is_not_ascii_uint64_is_not_a_number(systemctl, value):
    """Before: "²" raised ValueError and 400 digits OverflowError out of unit_uptime (neither
    is a SystemdError, so the component check ended in a Python error); "٣٠٠٠" read as 3000."""
    systemctl.show_text(f"InactiveExitTimestampMonotonic={value}\nInactiveExitTimestamp=n/a\n")
    with pytest.raises(systemd.SystemdError, match="has never started"):
        systemd.unit_uptime("kubelet", systemctl=systemctl.path)


def test_an_unparsable_wall_clock_stamp_is_echoed_bounded(systemctl):
    systemctl.show_text(
        "InactiveExitTimestamp=" + "Mon 2024-01-01 10:00:00 " + "Z" * 100_000 + "\n"
    )
    with pytest.raises(systemd.SystemdError) as info:
        systemd.unit_uptime("kubelet", systemctl=systemctl.path)
    assert len(str(info.value).encode()) <= 512 and "\n" not in str(info.value)
