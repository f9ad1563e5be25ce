"""Agent configuration: defaults from declarations, strict validation, one line and exit 2."""

from __future__ import annotations

import pytest

from healthcheck import _host as host
from healthcheck._agent.config import ConfigError, parse_config

from .conftest import REPO


@pytest.fixture(scope="module")
def catalog():
    return {name: lc.checker for name, lc in host.discover().checkers.items()}


def test_defaults_come_from_the_declaration(catalog):
    config = parse_config({"checks": [{"checker": "conntrack"}]}, catalog)
    spec = config.checks[0]
    decl = catalog["conntrack"]
    assert (spec.interval, spec.timeout, spec.permanent, spec.reason) == (
        decl.interval,
        decl.timeout,
        False,
        "ConntrackFull",
    )
    assert spec.options.threshold == 90
    assert config.heartbeat == 300.0
    assert config.namespace == "default"
    assert config.metrics == ("127.0.0.1", 20257)
    assert config.server == ("127.0.0.1", 20256)


def test_overrides_and_custom_plugin(catalog, tmp_path):
    script = tmp_path / "p.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    config = parse_config(
        {
            "heartbeatPeriod": "1m30s",
            "eventNamespace": "kube-system",
            "metrics": "",
            "server": "[::1]:9",
            "checks": [
                {
                    "checker": "conntrack",
                    "interval": "10s",
                    "timeout": "2s",
                    "options": {"threshold": 80, "check-drops": True},
                    "type": "permanent",
                    "condition": "ConntrackProblem",
                    "healthyReason": "ConntrackOK",
                },
                {"path": str(script), "args": ["-v"], "type": "temporary", "reason": "P"},
            ],
        },
        catalog,
    )
    first, second = config.checks
    assert (first.interval, first.timeout, first.options.threshold) == (10.0, 2.0, 80)
    assert first.options.check_drops is True and first.permanent
    assert second.argv == [str(script), "-v"] and second.name == "p.sh"
    assert config.metrics is None and config.server == ("::1", 9)
    assert config.heartbeat == 90.0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"checkz": []}, "checkz: unknown key"),
        ({"checks": {}}, "checks: expected a list"),
        ({"checks": [{"checker": "nope"}]}, "checks[0].checker: unknown checker 'nope'"),
        ({"checks": [{"checker": "conntrack", "bogus": 1}]}, "checks[0].bogus: unknown key"),
        ({"checks": [{"checker": "conntrack", "interval": "10"}]}, "checks[0].interval"),
        ({"checks": [{"checker": "conntrack", "interval": 30}]}, "checks[0].interval"),
        ({"checks": [{"checker": "conntrack", "timeout": "0s"}]}, "checks[0].timeout"),
        ({"checks": [{"checker": "conntrack", "type": "sometimes"}]}, "checks[0].type"),
        (
            {"checks": [{"checker": "conntrack", "options": {"threshold": "lots"}}]},
            "checks[0].options.threshold",
        ),
        (
            {"checks": [{"checker": "conntrack", "options": {"threshold": 101}}]},
            "checks[0].options.threshold",
        ),
        (
            {"checks": [{"checker": "conntrack", "options": {"threshold": True}}]},
            "checks[0].options.threshold",
        ),
        (
            {"checks": [{"checker": "conntrack", "options": {"nope": 1}}]},
            "checks[0].options.nope: unknown option",
        ),
        ({"checks": [{"checker": "conntrack", "type": "permanent"}]}, "checks[0].condition"),
        ({"checks": [{"checker": "conntrack"}, {"checker": "conntrack"}]}, "checks[1].name"),
        (
            {"checks": [{"path": "relative.sh", "type": "temporary", "reason": "R"}]},
            "checks[0].path",
        ),
        (
            {"checks": [{"path": "/nonexistent/x.sh", "type": "temporary", "reason": "R"}]},
            'rule path "/nonexistent/x.sh" does not exist',
        ),
        ({"checks": [{"checker": "conntrack", "path": "/bin/true"}]}, "checks[0]: give exactly"),
        (
            {"checks": [{"path": "/bin/true", "type": "temporary", "reason": "R", "args": "x"}]},
            "checks[0].args: expected a list",
        ),
        ({"heartbeatPeriod": "5 minutes"}, "heartbeatPeriod"),
        ({"metrics": "localhost"}, "metrics"),
        ({"server": 20256}, "server: expected a string"),
        ("just text", "config: expected a mapping"),
    ],
)
def test_bad_config_names_the_key(catalog, data, key):
    with pytest.raises(ConfigError) as info:
        parse_config(data, catalog)
    assert key in str(info.value)
    assert "\n" not in str(info.value)


def test_shipped_config_covers_every_builtin_checker(run_cli, catalog):
    import yaml

    shipped = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
    configured = {c["checker"] for c in shipped["checks"] if "checker" in c}
    from healthcheck import _host as host

    builtin = {c.name for c in host.discover() if c.distribution == "node-healthcheck"}
    commented = (REPO / "config" / "agent.yaml").read_text()
    assert builtin, "no built-in checker found"
    for name in builtin - configured:  # mutually exclusive runtimes are shipped commented out
        assert f"#   - checker: {name}" in commented or f"# - checker: {name}" in commented, name
    proc = run_cli("agent", "--config", str(REPO / "config" / "agent.yaml"), "--check-config")
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("checks: [\n", "agent.yaml: line"),
        ("checks:\n  - checker: conntrack\n    interval: soon\n", "checks[0].interval"),
        ("checks:\n  - checker: kubelett\n", "unknown checker 'kubelett'"),
        ("foo: 1\n", "foo: unknown key"),
        ("checks: []\nchecks: []\n", "line 2: key 'checks' given twice"),
        ("checks:\n  - checker: conntrack\n    checker: conntrack\n", "given twice"),
        ("checks: !!python/object:os.system x\n", "agent.yaml: line 1"),
    ],
)
def test_cli_bad_config_is_one_line_exit_2(run_cli, tmp_path, text, expect):
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    proc = run_cli("agent", "--config", str(path), "--dry-run", "--once")
    assert proc.returncode == 2
    assert expect in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
    assert "Traceback" not in proc.stderr


def test_cli_missing_config_and_bad_flags(run_cli, tmp_path):
    proc = run_cli("agent", "--config", str(tmp_path / "missing.yaml"), "--check-config")
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    proc = run_cli("agent", "--once")
    assert proc.returncode == 2 and "--config" in proc.stderr
    proc = run_cli("agent", "--config", "x", "--frobnicate")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_cli_unloadable_kubeconfig_is_one_line(run_cli, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("checks: []\n")
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\n")
    proc = run_cli("agent", "--config", str(config), "--once", "--kubeconfig", str(bad))
    assert proc.returncode == 2
    assert "kubeconfig" in proc.stderr and proc.stderr.strip().count("\n") == 0
    proc = run_cli("agent", "--config", str(config), "--once", env={"KUBERNETES_SERVICE_HOST": ""})
    assert proc.returncode == 2 and "in-cluster config" in proc.stderr
