"""The repair policy against hostile checkers and state files: nothing a plugin's repair callbacks
raise (``sys.exit()`` included) or a state file holds escapes the policy, and the check's result
always survives."""

from __future__ import annotations

import json
import sys

import pytest

from healthcheck import Checker, Condition, Result, Status
from healthcheck._declaration import CheckContext, Options
from healthcheck._runner import run_check
from healthcheck.sdk import repair


def _ctx(tmp_path, **opts):
    defaults = {o.name: o.default for o in repair.REPAIR_OPTIONS}
    defaults.update(state_dir=str(tmp_path), **opts)
    return CheckContext("unit", Options(**defaults), deadline=1e18)


def _exit(ctx):
    sys.exit(3)


def _fix(
    action=lambda ctx: None, *, uptime=lambda ctx: 999.0, target=lambda ctx: "x", describe=None
):
    return repair.Repair(
        action, uptime=uptime, target=target, describe=describe or (lambda ctx: "fix x")
    )


@pytest.mark.parametrize(
    "callbacks, expected",
    [
        ({"action": _exit}, "repair failed: fix x: exited (code 3)"),
        ({"uptime": _exit}, "not repairing: cannot get the uptime: exited (code 3)"),
        ({"target": _exit}, "exited (code 3)"),
        ({"describe": _exit}, "exited (code 3)"),
        ({"uptime": lambda ctx: float("inf")}, "not repairing: cannot get the uptime: inf"),
        ({"uptime": lambda ctx: float("nan")}, "not repairing: cannot get the uptime: nan"),
        ({"uptime": lambda ctx: 10**400}, "not repairing: cannot get the uptime"),
        ({"describe": lambda ctx: "kill\nx" * 100_000}, "repaired: kill x"),
    ],
)
def test_a_repair_callback_that_exits_or_lies_is_one_logged_line(
    tmp_path, capsys, callbacks, expected
):
    line = repair.apply("unit", _ctx(tmp_path), _fix(**callbacks))
    assert expected in line
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err.encode()) <= 513


def test_a_dry_run_preview_survives_callbacks_that_exit(tmp_path):
    line = repair.apply("unit", _ctx(tmp_path, dry_run_repair=True), _fix(describe=_exit))
    assert "exited (code 3)" in line


def test_the_problem_survives_a_repair_that_calls_sys_exit(tmp_path):
    """Before: SystemExit from the repair ended the check thread, and the PROBLEM became
    "did not finish within 5s"."""
    checker = Checker(
        "sample",
        description="test",
        check=lambda ctx: Result.problem("broken"),
        condition=Condition("", "Reason", permanent=False),
        repair=_fix(_exit),
        options=repair.REPAIR_OPTIONS,
    )
    options = checker.defaults()
    options.state_dir = str(tmp_path)
    outcome = run_check(checker, options, timeout=5.0)
    assert outcome.result.status is Status.PROBLEM
    assert outcome.result.message == "broken"
    assert not outcome.timed_out


@pytest.mark.parametrize("boottime", [10**400, "1e999", float("nan"), [1], {"a": 1}, None])
def test_a_hostile_repair_record_is_no_record(tmp_path, boottime):
    done = []
    path = repair.state_path(str(tmp_path), "unit")
    with open(path, "w") as fh:
        json.dump({"x": {"boot_id": repair._boot_id(), "boottime": boottime}}, fh)
    line = repair.apply("unit", _ctx(tmp_path), _fix(lambda ctx: done.append(1)))
    assert line.startswith("repaired: fix x"), line
    assert done == [1]
