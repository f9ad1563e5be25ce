"""Repair with cooldown (spec 3.5 and 8.1 TestHealthCheck) through the shared policy, against a
recording systemctl stand-in: the exact argv of every call is asserted."""

from __future__ import annotations

import subprocess

import pytest

from healthcheck._declaration import CheckContext, Options
from healthcheck.sdk import repair

SHOW = ["show", "--property=InactiveExitTimestampMonotonic,InactiveExitTimestamp", "--", "kubelet"]


@pytest.fixture
def unhealthy(http_server):
    server = http_server(status=500)
    return {"HOST_ADDRESS": "127.0.0.1", "KUBELET_PORT": str(server.server_address[1])}


def _hc(run_cli, systemctl, tmp_path, *args, env):
    return run_cli(
        "--cooldown-time=2s",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path / 'state'}",
        *args,
        script="health-checker",
        env=env,
        timeout=30,
    )


def test_unhealthy_repair_off_never_touches_systemd(run_cli, systemctl, tmp_path, unhealthy):
    proc = _hc(run_cli, systemctl, tmp_path, "--enable-repair=false", env=unhealthy)
    assert proc.returncode == 1
    assert systemctl.calls() == []


def test_unhealthy_up_shorter_than_cooldown_is_not_repaired(
    run_cli, systemctl, tmp_path, unhealthy
):
    # The stand-in's wall-clock InactiveExitTimestamp says 2024, i.e. up for years: only the
    # monotonic reading (1 s) keeps this from a kill, so this also pins which one is used.
    systemctl.up_for(1)
    proc = _hc(run_cli, systemctl, tmp_path, env=unhealthy)
    assert proc.returncode == 1
    assert proc.stdout == "kubelet:kubelet was found unhealthy; repair flag : true\n"
    assert systemctl.calls() == [SHOW]
    assert "not longer than the cooldown" in proc.stderr


def test_unhealthy_up_longer_than_cooldown_is_killed(run_cli, systemctl, tmp_path, unhealthy):
    systemctl.up_for(3600)
    proc = _hc(run_cli, systemctl, tmp_path, env=unhealthy)
    assert proc.returncode == 1
    assert systemctl.calls() == [SHOW, ["kill", "--kill-who=main", "--", "kubelet"]]
    assert "repaired: systemctl kill --kill-who=main kubelet" in proc.stderr


def test_no_second_repair_within_one_cooldown_even_with_a_stale_uptime(
    run_cli, systemctl, tmp_path, unhealthy
):
    """NPD #548: right after a kill, a stale uptime still says 1h; we must not kill again."""
    systemctl.up_for(3600)
    _hc(run_cli, systemctl, tmp_path, "--cooldown-time=1h", env=unhealthy)
    systemctl.up_for(3601 + 3600)
    proc = _hc(run_cli, systemctl, tmp_path, "--cooldown-time=1h", env=unhealthy)
    assert proc.returncode == 1
    assert len(systemctl.kills()) == 1
    assert "within the cooldown 1h" in proc.stderr
    # Another state directory has no record: the state file is what prevented the kill.
    other = run_cli(
        "--cooldown-time=1h",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path / 'other'}",
        script="health-checker",
        env=unhealthy,
    )
    assert other.returncode == 1
    assert len(systemctl.kills()) == 2


def test_concurrent_invocations_repair_once(bin_path, systemctl, tmp_path, unhealthy):
    import os

    env = {**os.environ, **unhealthy}
    argv = [
        bin_path("health-checker"),
        "--cooldown-time=1m",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path / 'state'}",
    ]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE) for _ in range(6)]
    codes = [p.wait(30) for p in procs]
    for p in procs:
        p.stdout.close()
    assert codes == [1] * 6
    assert systemctl.kills() == [["kill", "--kill-who=main", "--", "kubelet"]]


def test_dry_run_logs_and_does_nothing(run_cli, systemctl, tmp_path, unhealthy):
    proc = _hc(run_cli, systemctl, tmp_path, "--dry-run-repair", env=unhealthy)
    assert proc.returncode == 1
    assert systemctl.kills() == []
    assert "dry run: would systemctl kill --kill-who=main kubelet" in proc.stderr
    assert not (tmp_path / "state" / "repair-kubelet.json").exists()


def test_docker_gets_sigusr1_then_kill(run_cli, systemctl, tmp_path, unix_http_server):
    server = unix_http_server(status=500, body=b'{"message":"boom"}')
    proc = run_cli(
        "--component=docker",
        f"--docker-socket={server.socket_path}",
        "--service=docker.service",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path}",
        script="health-checker",
    )
    assert proc.returncode == 1
    assert proc.stdout == "docker:docker.service was found unhealthy; repair flag : true\n"
    assert systemctl.kills() == [
        ["kill", "--kill-who=main", "--signal=SIGUSR1", "--", "docker.service"],
        ["kill", "--kill-who=main", "--", "docker.service"],
    ]


def test_cri_repairs_containerd_by_default(run_cli, systemctl, tmp_path):
    proc = run_cli(
        "--component=cri",
        f"--cri-socket-path=unix://{tmp_path}/absent.sock",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path}",
        script="health-checker",
    )
    assert proc.stdout == "cri:containerd was found unhealthy; repair flag : true\n"
    assert systemctl.kills() == [["kill", "--kill-who=main", "--", "containerd"]]


def test_failing_systemctl_is_logged_and_still_unhealthy(run_cli, systemctl, tmp_path, unhealthy):
    systemctl.exit_code(1)
    proc = run_cli(
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path / 'fresh'}",
        script="health-checker",
        env=unhealthy,
    )
    assert proc.returncode == 1
    assert "not repairing: cannot get the uptime" in proc.stderr  # NPD: log, no repair


def test_unusable_state_dir_means_no_repair(run_cli, systemctl, tmp_path, unhealthy):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run_cli(
        f"--systemctl={systemctl.path}",
        f"--state-dir={blocker}",
        script="health-checker",
        env=unhealthy,
    )
    assert proc.returncode == 1
    assert systemctl.kills() == []
    assert "not repairing: cannot lock state file" in proc.stderr


def test_missing_systemctl_is_logged_not_fatal_for_repair(run_cli, tmp_path, unhealthy):
    proc = run_cli(
        f"--systemctl={tmp_path}/no-such-systemctl",
        f"--state-dir={tmp_path}",
        script="health-checker",
        env=unhealthy,
    )
    assert proc.returncode == 1
    assert "systemd not reachable: cannot start" in proc.stderr


def _ctx(tmp_path, **opts):
    defaults = {o.name: o.default for o in repair.REPAIR_OPTIONS}
    defaults.update(state_dir=str(tmp_path), **opts)
    return CheckContext("unit", Options(**defaults), deadline=1e18)


def test_policy_cooldown_is_strictly_greater(tmp_path):
    done = []
    fix = repair.Repair(
        lambda ctx: done.append(1),
        uptime=lambda ctx: 120.0,
        target=lambda ctx: "x.service",
        describe=lambda ctx: "fix x",
    )
    repair.apply("unit", _ctx(tmp_path, cooldown_time=120.0), fix)
    assert done == []
    repair.apply("unit", _ctx(tmp_path, cooldown_time=119.999), fix)
    assert done == [1]


def test_claim_that_waited_for_the_lock_sees_the_holders_repair(tmp_path):
    """The CI race: a run that read the clock before waiting took the holder's fresh record
    for one in its future and repaired a second time."""
    import threading
    import time

    from healthcheck.sdk.state import locked_state

    path = repair.state_path(str(tmp_path), "kubelet")
    results = []
    with locked_state(path) as state:
        waiter = threading.Thread(
            target=lambda: results.append(repair._claim(path, "kubelet", 60.0))
        )
        waiter.start()
        time.sleep(0.2)  # the waiter is now blocked on the lock
        state["kubelet"] = {
            "boot_id": repair._boot_id(),
            "boottime": time.clock_gettime(time.CLOCK_BOOTTIME),
            "time": time.time(),
        }
    waiter.join(10)
    assert len(results) == 1 and results[0] is not None  # refused: within the cooldown
    assert 0 <= results[0] < 60


def test_policy_failing_action_is_reported_not_raised(tmp_path):
    def boom(ctx):
        raise RuntimeError("no main process to kill")

    fix = repair.Repair(
        boom, uptime=lambda ctx: 999.0, target=lambda ctx: "y", describe=lambda ctx: "kill y"
    )
    line = repair.apply("unit", _ctx(tmp_path), fix)
    assert line == "repair failed: kill y: no main process to kill"


def test_status_front_door_never_repairs(systemctl, tmp_path, http_server, monkeypatch):
    from healthcheck import _host as host
    from healthcheck._runner import run_check

    server = http_server(status=500)
    monkeypatch.setenv("HOST_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("KUBELET_PORT", str(server.server_address[1]))
    checker = host.find("kubelet").checker
    options = checker.defaults()
    options.systemctl = systemctl.path
    options.state_dir = str(tmp_path)
    assert run_check(checker, options, repair=False).result.status == 1
    assert systemctl.calls() == []
    assert run_check(checker, options).result.status == 1
    assert systemctl.kills() == [["kill", "--kill-who=main", "--", "kubelet"]]
