"""The remediation state machine (pure: time is an argument) and the record on the Node."""

from __future__ import annotations

from healthcheck._agent.remediation import rules as r
from healthcheck._agent.remediation.config import Rule

T0 = 1_800_000_000.0


def rule(**kw):
    kw.setdefault("min_hold", 60.0)
    return Rule("m", "MaintenanceScheduled", kw.pop("actions", ("taint", "cordon", "drain")), **kw)


def obs(status="True", since=T0, not_before=None, node_age=3600.0):
    return r.Observation(status, since, not_before, node_age)


def test_idle_until_the_condition_has_held_for_long_enough():
    m = rule(for_=120.0)
    assert r.evaluate(m, obs("False"), None, T0 + 500) == r.Step(r.IDLE)
    assert r.evaluate(m, obs(None), None, T0 + 500) == r.Step(r.IDLE)  # not reported yet
    assert r.evaluate(m, obs(), None, T0 + 60) == r.Step(r.PENDING, wake=T0 + 120)
    assert r.evaluate(m, obs(), None, T0 + 120) == r.Step(r.START)


def test_lead_time_acts_at_not_before_minus_lead_time():
    m = rule(lead_time=1800.0)
    when = T0 + 7200
    assert r.evaluate(m, obs(not_before=when), None, T0 + 10) == r.Step(r.PENDING, wake=when - 1800)
    assert r.evaluate(m, obs(not_before=when), None, when - 1800) == r.Step(r.START)
    # already near (or past): at once; unknown time: at once
    assert r.evaluate(m, obs(not_before=T0 + 60), None, T0 + 1) == r.Step(r.START)
    assert r.evaluate(m, obs(not_before=None), None, T0 + 1) == r.Step(r.START)


def test_young_nodes_are_left_alone_for_the_grace_period():
    m = rule()
    step = r.evaluate(m, obs(node_age=30.0), None, T0 + 5, node_grace=120.0)
    assert step == r.Step(r.PENDING, wake=T0 + 5 + 90)
    assert r.evaluate(m, obs(node_age=121.0), None, T0 + 5, node_grace=120.0) == r.Step(r.START)


def test_actions_run_in_order_then_wait():
    m = rule()
    state = r.RuleState(T0)
    assert r.evaluate(m, obs(), state, T0) == r.Step(r.ACT, "taint")
    state.done.append("taint")
    assert r.evaluate(m, obs(), state, T0) == r.Step(r.ACT, "cordon")
    state.done += ["cordon", "drain"]
    assert r.evaluate(m, obs(), state, T0) == r.Step(r.WAIT)


def test_undo_after_clear_and_min_hold_never_on_unknown():
    m = rule(min_hold=300.0)
    state = r.RuleState(T0, ["taint", "cordon", "drain"])
    assert r.evaluate(m, obs("Unknown"), state, T0 + 9999) == r.Step(r.WAIT)
    assert r.evaluate(m, obs("False"), state, T0 + 100) == r.Step(r.WAIT, wake=T0 + 300)
    assert r.evaluate(m, obs("False"), state, T0 + 300) == r.Step(r.UNDO)
    assert r.evaluate(m, obs(r.ABSENT), state, T0 + 300) == r.Step(r.UNDO)


def test_rule_on_a_false_status_clears_on_true():
    ready = Rule("ready", "Ready", ("taint",), status="False", min_hold=0.0)
    assert r.evaluate(ready, obs("False"), None, T0) == r.Step(r.START)
    state = r.RuleState(T0, ["taint"])
    assert r.evaluate(ready, obs("True"), state, T0) == r.Step(r.UNDO)
    assert r.evaluate(ready, obs("Unknown"), state, T0) == r.Step(r.WAIT)


def test_repair_verdict_hold_and_retry():
    m = rule(actions=("repair",), repair_verify=120.0, repair_hold=3600.0)
    state = r.RuleState(T0, ["repair"], repaired_at=T0)
    assert r.evaluate(m, obs(), state, T0 + 60) == r.Step(r.WAIT, wake=T0 + 120)
    assert r.evaluate(m, obs(), state, T0 + 120) == r.Step(r.REPAIR_FAILED)
    held = r.after_repair_failed(m, state, T0 + 120)
    assert held.done == [] and held.hold_until == T0 + 3720
    assert not r.holds_marks(held)  # a repair-only rule gives its slot back while on hold
    assert r.evaluate(m, obs(), held, T0 + 200) == r.Step(r.WAIT, wake=T0 + 3720)
    assert r.evaluate(m, obs(), held, T0 + 3720) == r.Step(r.ACT, "repair")
    # the repair worked: the condition cleared, and after minHold the rule ends
    assert r.evaluate(m, obs("False"), state, T0 + 60) == r.Step(r.UNDO)


def test_holds_marks():
    assert not r.holds_marks(None)
    assert r.holds_marks(r.RuleState(T0, ["taint"]))
    assert r.holds_marks(r.RuleState(T0, ["cordon"]))
    assert r.holds_marks(r.RuleState(T0, [], drain_started=T0))
    assert not r.holds_marks(r.RuleState(T0, ["drain"], drain_started=T0))


def test_record_round_trip_and_junk():
    record = r.Record({"m": r.RuleState(T0, ["taint"], drain_started=T0 + 1)}, cordoned=True)
    text = record.dumps()
    back = r.Record.loads(text)
    assert back.cordoned and back.rules == record.rules
    assert r.Record().dumps() is None
    for junk in (None, "", "[]", "{", '{"rules": {"m": {"started": "x"}}}', "x" * 20000):
        parsed = r.Record.loads(junk)
        assert parsed.rules == {} and not parsed.cordoned
    odd = r.Record.loads('{"rules": {"m": {"started": 1, "done": ["taint", "rm -rf"]}}}')
    assert odd.rules["m"].done == ["taint"]
