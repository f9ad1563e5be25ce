"""No argument injection (issue 11, invariant 7): a unit name from a flag or a config file never
reaches systemctl as an option or a glob pattern. Against the recording systemctl stand-in, whose
argv is asserted: the name is checked against systemd's rules and passed after ``--``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcheck.sdk import systemd

HOSTILE = [
    "--host=root@evil",  # systemctl -H: act on another machine over ssh
    "-H",
    "--machine=x",
    "kube*",  # a glob: systemctl kill would signal every matching unit
    "kube?et",
    "kube[l]et",
    "kubelet service",
    "kubelet\n--host=root@evil",
    "a" * 300,
    "",
]


@pytest.fixture
def unhealthy(http_server):
    server = http_server(status=500)
    return {"HOST_ADDRESS": "127.0.0.1", "KUBELET_PORT": str(server.server_address[1])}


@pytest.mark.parametrize("name", [n for n in HOSTILE if n])
@pytest.mark.parametrize("front_door", ["health-checker", "check"])
def test_hostile_service_names_are_one_line_exit_2_and_never_run(
    run_cli, systemctl, tmp_path, unhealthy, name, front_door
):
    flags = [
        "--cooldown-time=1s",
        f"--systemctl={systemctl.path}",
        f"--state-dir={tmp_path / 'state'}",
        f"--service={name}",
        "--log-pattern=1:x",
    ]
    if front_door == "check":
        proc = run_cli("check", "kubelet", *flags, env=unhealthy, timeout=30)
    else:
        proc = run_cli(*flags, script="health-checker", env=unhealthy, timeout=30)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert systemctl.calls() == []  # the repair and the uptime read never ran
    out = proc.stdout + proc.stderr
    assert "invalid unit name" in out and "Traceback" not in out
    # stdout is the condition message: one line. A drop-in that had to cut it also writes the
    # whole line, once, to stderr (which NPD logs).
    assert proc.stdout.count("\n") == 1
    assert proc.stderr.count("\n") <= 1


@pytest.mark.parametrize("name", HOSTILE)
def test_the_systemd_module_refuses_them_itself(systemctl, name):
    """Defence in depth: a caller that skipped the flag check still cannot inject."""
    with pytest.raises(systemd.SystemdError, match="invalid unit name"):
        systemd.kill_main(name, systemctl=systemctl.path)
    with pytest.raises(systemd.SystemdError, match="invalid unit name"):
        systemd.unit_uptime(name, systemctl=systemctl.path)
    assert systemctl.calls() == []


@pytest.mark.parametrize(
    "name", ["kubelet", "containerd.service", "getty@tty1.service", "a\\x2db:c_d.e.socket"]
)
def test_valid_names_go_after_a_double_dash(systemctl, name):
    systemd.kill_main(name, systemctl=systemctl.path)
    systemd.unit_uptime(name, systemctl=systemctl.path)
    properties = "--property=InactiveExitTimestampMonotonic,InactiveExitTimestamp"
    assert systemctl.calls() == [
        ["kill", "--kill-who=main", "--", name],
        ["show", properties, "--", name],
    ]


def test_an_agent_config_with_a_hostile_service_is_refused(run_cli, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("checks:\n  - checker: kubelet\n    options:\n      service: '-H'\n")
    proc = run_cli("agent", "--config", str(config), "--check-config", timeout=30)
    assert proc.returncode == 2
    assert "invalid unit name" in proc.stderr and "Traceback" not in proc.stderr


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_whatever_is_accepted_is_one_plain_unit_name(name):
    try:
        systemd.check_unit_name(name)
    except ValueError as exc:
        assert "\n" not in str(exc) and len(str(exc).encode()) <= 200
        return
    assert not name.startswith("-")
    assert name.isascii() and not set(name) & set("*?[]!{}/ =\t\n")
    assert 0 < len(name) <= systemd.UNIT_NAME_MAX
