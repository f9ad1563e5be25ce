"""health-checker's flags, parsed as NPD's pflag parses them (spec 3.1, 8.1 TestIsValid)."""

from __future__ import annotations

import pytest

from healthcheck import _host as host
from healthcheck_plugins.component.cmd.healthchecker import FlagError, parse


@pytest.fixture(scope="module")
def kubelet():
    return host.find("kubelet").checker


def test_npd_shipped_kubelet_args_parse(kubelet):
    values, verbosity = parse(
        [
            "--component=kubelet",
            "--enable-repair=true",
            "--cooldown-time=1m",
            "--loopback-time=0",
            "--health-check-timeout=10s",
        ],
        kubelet,
    )
    assert values == {
        "component": "kubelet",
        "enable_repair": True,
        "cooldown_time": 60.0,
        "loopback_time": 0.0,
        "health_check_timeout": 10.0,
    }
    assert verbosity == 0


@pytest.mark.parametrize(
    ("argv", "name", "value"),
    [
        (["--systemd-service=kubelet-x"], "service", "kubelet-x"),
        (["--service", "k"], "service", "k"),
        (["--enable-repair"], "enable_repair", True),
        (["--enable-repair=false"], "enable_repair", False),
        (["--enable-repair=F"], "enable_repair", False),
        (["--enable-repair=0"], "enable_repair", False),
        (["--cri-timeout=10s"], None, None),  # accepted for every component, as NPD
        (["--crictl-path", "/x"], None, None),
        (["--log-pattern=1:a", "--log-pattern", "2:b,3:c"], "log_pattern", None),
    ],
)
def test_go_flag_syntax(kubelet, argv, name, value):
    values, _ = parse(argv, kubelet)
    if name == "log_pattern":
        assert values[name] == [("a", 1), ("b", 2), ("c", 3)]
    elif name is None:
        assert values == {}
    else:
        assert values == {name: value}


@pytest.mark.parametrize(
    ("argv", "verbosity"),
    [(["-v=4"], 4), (["-v", "2"], 2), (["-v3"], 3), (["--v=5"], 5), (["--v", "1"], 1)],
)
def test_klog_verbosity(kubelet, argv, verbosity):
    assert parse([*argv, "--vmodule=x=2", "--logtostderr"], kubelet)[1] == verbosity


def test_bool_flag_does_not_take_the_next_argument(kubelet):
    # pflag: a bare bool is true; "false" is a positional argument the program ignores.
    values, _ = parse(["--enable-repair", "false"], kubelet)
    assert values == {"enable_repair": True}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nope"], "unknown flag: --nope"),
        (["-component=kubelet"], "unknown shorthand flag: 'c' in -component=kubelet"),
        (["--cooldown-time"], "flag needs an argument: --cooldown-time"),
        (["--enable-repair=maybe"], 'invalid argument "maybe" for "--enable-repair" flag'),
        (["--cooldown-time", "5x"], 'invalid argument "5x" for "--cooldown-time" flag'),
        (["--health-check-timeout=1.5.5s"], 'invalid argument "1.5.5s"'),
        (["-v=x"], 'invalid argument "x" for "-v, --v" flag'),
        (["--cri-timeout=soon"], 'invalid argument "soon" for "--cri-timeout" flag'),
    ],
)
def test_bad_flags(kubelet, argv, message):
    with pytest.raises(FlagError, match="^" + message.replace("(", "\\(")):
        parse(argv, kubelet)


@pytest.mark.parametrize(
    "args",
    [
        ["--component=wrongComponent"],
        ["--component", "etcd"],
        ["--cooldown-time", "5x"],
        ["--log-pattern", "0:x"],
        ["--component=cri", "--crictl-path="],
        ["--component=cri", "--cri-socket-path="],
        ["--bogus"],
    ],
)
def test_bad_input_is_one_line_exit_2(run_cli, args):
    proc = run_cli(*args, script="health-checker")
    assert proc.returncode == 2
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_component_message(run_cli):
    """NPD's IsValid wording (differential run), cut to the 80 bytes NPD shows by default."""
    proc = run_cli("--component=wrongComponent", script="health-checker")
    npd = (
        "the component specified is not supported. "
        "Supported components are : <kubelet/docker/cri/kube-proxy>"
    )
    assert proc.stdout == npd.encode()[:80].decode() + "\n"


def test_negative_durations_are_accepted_as_npd_accepts_them(kubelet):
    """NPD reads a negative cooldown, loopback or probe timeout exactly as 0 (differential run)."""
    values, _ = parse(
        ["--health-check-timeout=-1s", "--cooldown-time=-2m", "--loopback-time=-1h"], kubelet
    )
    assert values == {"health_check_timeout": 0.0, "cooldown_time": 0.0, "loopback_time": 0.0}


def test_help_goes_to_stderr_and_exits_0(run_cli):
    """pflag prints the usage on stderr: NPD's condition message stays empty (differential run)."""
    proc = run_cli("--help", script="health-checker")
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert "--log-pattern" in proc.stderr


def test_every_component_resolves_to_a_checker():
    """NPD's TestComponentsSupported."""
    for name in ("kubelet", "kube-proxy", "docker", "cri"):
        checker = host.find(name).checker
        assert checker.repair is not None
        assert callable(checker.check)


def test_service_defaults_as_npd(run_cli, tmp_path):
    """SetDefaults: the component name, containerd for cri; visible in the unhealthy line."""
    for component, service, flag in (
        ("docker", "docker", f"--docker-socket={tmp_path}/none"),
        ("cri", "containerd", f"--cri-socket-path=unix://{tmp_path}/none"),
    ):
        proc = run_cli(
            f"--component={component}", "--enable-repair=false", flag, script="health-checker"
        )
        assert proc.stdout == f"{component}:{service} was found unhealthy; repair flag : false\n"
