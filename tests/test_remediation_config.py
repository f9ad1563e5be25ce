"""The ``remediation:`` key: off by default, defaults, and one line naming the key on bad input."""

from __future__ import annotations

import pytest

from healthcheck import _host as host
from healthcheck._agent.config import ConfigError, load_config, parse_config


@pytest.fixture(scope="module")
def catalog():
    return {name: lc.checker for name, lc in host.discover().checkers.items()}


MAINTENANCE = {"checker": "maintenance-events", "options": {"provider": "alibaba"}}
KUBELET = {"checker": "kubelet"}


def parse(catalog, remediation, checks=(MAINTENANCE,)):
    data = {"checks": [dict(c) for c in checks]}
    if remediation is not ...:
        data["remediation"] = remediation
    return parse_config(data, catalog)


def test_off_by_default(catalog):
    assert parse(catalog, ...).remediation is None
    assert parse(catalog, None).remediation is None


def test_defaults(catalog):
    config = parse(
        catalog,
        {"rules": [{"when": {"condition": "MaintenanceScheduled"}, "actions": ["cordon"]}]},
    ).remediation
    (rule,) = config.rules
    assert (rule.name, rule.condition, rule.status, rule.for_, rule.lead_time) == (
        "MaintenanceScheduled",
        "MaintenanceScheduled",
        "True",
        0.0,
        0.0,
    )
    assert (rule.min_hold, rule.repair_hold, rule.dry_run) == (300.0, 10800.0, False)
    assert rule.taint_key == "remediation.node-healthcheck.io/MaintenanceScheduled"
    assert (config.max_concurrent, config.max_percent, config.min_interval) == (1, None, 60.0)
    assert (config.node_grace, config.lease_duration, config.namespace) == (
        120.0,
        60.0,
        "node-healthcheck-remediation",
    )
    assert (config.drain.timeout, config.drain.max_grace_period) == (600.0, 60.0)
    assert not config.drain.force and not config.drain.delete_emptydir_data


def test_full_rule_and_fixed_action_order(catalog):
    config = parse(
        catalog,
        {
            "maxConcurrent": "10%",
            "minInterval": "0s",
            "drain": {"timeout": "2m", "force": True},
            "rules": [
                {
                    "name": "maintenance",
                    "when": {"condition": "MaintenanceScheduled", "status": "True", "for": "2m"},
                    "actions": ["drain", "cordon", "taint"],
                    "leadTime": "30m",
                    "dryRun": True,
                },
                {"when": {"condition": "Ready", "status": "False"}, "actions": ["taint"]},
            ],
        },
    ).remediation
    first, second = config.rules
    assert first.actions == ("taint", "cordon", "drain")
    assert (first.for_, first.lead_time, first.dry_run) == (120.0, 1800.0, True)
    assert (second.condition, second.status) == ("Ready", "False")
    assert (config.max_concurrent, config.max_percent) == (0, 10.0)
    assert config.drain.force and config.drain.timeout == 120.0


def test_repair_moves_the_inline_repair_behind_the_budget(catalog):
    config = parse(
        catalog,
        {"rules": [{"when": {"condition": "KubeletUnhealthy"}, "actions": ["repair"]}]},
        checks=(KUBELET,),
    )
    assert config.checks[0].condition == "KubeletUnhealthy"
    assert config.checks[0].options.enable_repair is False
    # without the rule the inline repair stays on
    assert parse(catalog, ..., checks=(KUBELET,)).checks[0].options.enable_repair is True


@pytest.mark.parametrize(
    ("remediation", "message"),
    [
        ("yes", "remediation: expected a mapping, got a string"),
        ({"rules": []}, "remediation.rules: expected a non-empty list"),
        ({"rule": []}, "remediation.rule: unknown key"),
        ({"rules": [{"actions": ["cordon"]}]}, "remediation.rules[0].when: required"),
        ({"rules": [{"when": {}, "actions": ["cordon"]}]}, "rules[0].when.condition: required"),
        (
            {"rules": [{"when": {"condition": "A", "status": True}, "actions": ["cordon"]}]},
            "remediation.rules[0].when.status: True is not",
        ),
        (
            {"rules": [{"when": {"condition": "A"}, "actions": ["reboot"]}]},
            "remediation.rules[0].actions[0]: 'reboot' is not one of taint, cordon",
        ),
        (
            {"rules": [{"when": {"condition": "A"}, "actions": ["drain"]}]},
            "remediation.rules[0].actions: drain needs cordon too",
        ),
        (
            {"rules": [{"when": {"condition": "A"}, "actions": ["repair"]}]},
            "remediation.rules[0].actions: repair needs a check in checks[] that reports A",
        ),
        (
            {"rules": [{"when": {"condition": "A/B"}, "actions": ["taint"]}]},
            "remediation.rules[0].when.condition: 'A/B' is not a valid name",
        ),
        (
            {"rules": [{"when": {"condition": "A", "for": "soon"}, "actions": ["taint"]}]},
            "remediation.rules[0].when.for:",
        ),
        (
            {"rules": [{"when": {"condition": "A"}, "actions": ["taint"], "leadTime": "999h"}]},
            'remediation.rules[0].leadTime: duration "999h" is longer than 30 days',
        ),
        (
            {
                "rules": [
                    {"when": {"condition": "A"}, "actions": ["taint"]},
                    {"when": {"condition": "A"}, "actions": ["cordon"], "name": "b"},
                ]
            },
            "remediation.rules[1].when.condition: 'A' is already used by rules[0]",
        ),
        (
            {"maxConcurrent": 0, "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}]},
            "remediation.maxConcurrent: 0 must be between 1 and 10000",
        ),
        (
            {"maxConcurrent": "0%", "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}]},
            'remediation.maxConcurrent: "0%" must be a percentage',
        ),
        (
            {"maxConcurrent": True, "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}]},
            "remediation.maxConcurrent: expected a number of nodes",
        ),
        (
            {
                "namespace": "Kube_System",
                "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}],
            },
            "remediation.namespace: 'Kube_System' is not a valid name",
        ),
        (
            {
                "drain": {"timeout": "0s"},
                "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}],
            },
            'remediation.drain.timeout: duration "0s" must be > 0',
        ),
        (
            {"dryRun": "no", "rules": [{"when": {"condition": "A"}, "actions": ["taint"]}]},
            "remediation.dryRun: expected true or false, got a string",
        ),
    ],
)
def test_errors_name_the_key(catalog, remediation, message):
    with pytest.raises(ConfigError) as info:
        parse(catalog, remediation)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_cli_exits_2_with_one_line(run_cli, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(
        "checks: [{checker: conntrack}]\n"
        "remediation:\n  rules: [{when: {condition: A}, actions: [drain]}]\n"
    )
    done = run_cli("agent", "--config", str(config), "--check-config")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "remediation.rules[0].actions: drain needs cordon too" in done.stderr
    assert "Traceback" not in done.stderr


def test_load_config_accepts_the_example(catalog, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text(
        "checks: [{checker: maintenance-events}]\n"
        "remediation:\n"
        "  maxConcurrent: 2\n"
        "  rules:\n"
        "    - name: maintenance\n"
        "      when: {condition: MaintenanceScheduled, for: 0s}\n"
        "      actions: [taint, cordon, drain]\n"
        "      leadTime: 30m\n"
    )
    loaded = load_config(str(config), catalog)
    assert loaded.remediation.rules[0].name == "maintenance"
    assert loaded.remediation.max_concurrent == 2


def test_the_shipped_example_is_valid(run_cli):
    from .conftest import REPO

    done = run_cli(
        "agent", "--config", str(REPO / "config" / "agent-remediation.yaml"), "--check-config"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("OK (2 checks)")


def _bare_repair_checker(repaired: list[str]):
    """A checker with a repair but without REPAIR_OPTIONS (no enable_repair option): the
    policy reads the flag with a default, so such a checker is valid."""
    from healthcheck import Checker, Condition, Option, Result
    from healthcheck.sdk.repair import Repair

    return Checker(
        "bare-repair",
        description="always unhealthy; its repair is recorded",
        check=lambda ctx: Result.problem("broken"),
        condition=Condition("BareBroken", "BareIsBroken", "BareIsFine", "fine"),
        options=[Option("state_dir", default="")],
        repair=Repair(
            lambda ctx: repaired.append(ctx.options.state_dir),
            uptime=lambda ctx: 1e6,
            target=lambda ctx: "bare.service",
            describe=lambda ctx: "restart bare.service",
        ),
    )


def test_a_repair_rule_for_a_checker_without_repair_options(tmp_path):
    from healthcheck._agent.remediation.wiring import _repair_of
    from healthcheck._agent.scheduler import execute

    repaired: list[str] = []
    checker = _bare_repair_checker(repaired)
    catalog = {"bare-repair": checker}

    def spec_for(state_dir, rules):
        data = {"checks": [{"checker": "bare-repair", "options": {"state_dir": str(state_dir)}}]}
        if rules:
            data["remediation"] = {
                "rules": [{"when": {"condition": "BareBroken"}, "actions": ["repair"]}]
            }
        return parse_config(data, catalog).checks[0]

    # Without a rule the check repairs inline, through the shared policy.
    inline = tmp_path / "inline"
    inline.mkdir()
    execute(spec_for(inline, rules=False))
    assert repaired == [str(inline)]

    # With one, the config is accepted and the check runs without its inline repair ...
    held = tmp_path / "held"
    held.mkdir()
    spec = spec_for(held, rules=True)
    assert spec.repair_inline is False
    assert not hasattr(spec.options, "enable_repair")
    execute(spec)
    assert repaired == [str(inline)]
    # ... and the remediation controller's repair runs it, once, behind the budget.
    run, describe = _repair_of(spec, checker, checker.repair)
    assert describe() == "restart bare.service"
    run()
    assert repaired == [str(inline), str(held)]
