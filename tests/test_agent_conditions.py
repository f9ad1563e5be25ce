"""NPD's condition state machine (spec 2.6), its change events, adoption and problem metrics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcheck import Status
from healthcheck._agent.clock import FakeClock
from healthcheck._agent.conditions import (
    ConditionTable,
    Event,
    NodeCondition,
    change_event,
    next_condition,
    temporary_events,
)
from healthcheck._agent.config import CheckSpec

DEFAULTS = {"reason": "KubeletUnhealthy", "healthy_reason": "KubeletIsHealthy"}
DEFAULT_MESSAGE = "kubelet on the node is functioning properly"


def cond(status, reason="KubeletIsHealthy", message=DEFAULT_MESSAGE, transition=1.0):
    return NodeCondition("KubeletUnhealthy", status, reason, message, transition)


def step(current, status, message="plugin says", **kw):
    return next_condition(
        current, status, message, healthy_message=DEFAULT_MESSAGE, now=99.0, **DEFAULTS, **kw
    )


@pytest.mark.parametrize(
    ("old", "new", "want"),
    [
        # True -> False: default reason and default message
        (
            cond("True", "KubeletUnhealthy", "bad"),
            Status.OK,
            ("False", "KubeletIsHealthy", DEFAULT_MESSAGE),
        ),
        # True -> Unknown: default reason, plugin message
        (
            cond("True", "KubeletUnhealthy", "bad"),
            Status.UNKNOWN,
            ("Unknown", "KubeletIsHealthy", "plugin says"),
        ),
        # False -> True and Unknown -> True: rule reason, plugin message
        (cond("False"), Status.PROBLEM, ("True", "KubeletUnhealthy", "plugin says")),
        (cond("Unknown", message="x"), Status.PROBLEM, ("True", "KubeletUnhealthy", "plugin says")),
        # False -> Unknown: default reason, plugin message
        (cond("False"), Status.UNKNOWN, ("Unknown", "KubeletIsHealthy", "plugin says")),
        # Unknown -> False: default reason, default message
        (cond("Unknown", message="x"), Status.OK, ("False", "KubeletIsHealthy", DEFAULT_MESSAGE)),
    ],
)
def test_transitions_follow_npd_table(old, new, want):
    updated = step(old, new)
    assert (updated.status, updated.reason, updated.message) == want
    assert updated.transition == 99.0


def test_staying_false_or_unknown_changes_nothing_and_first_unknown_message_is_kept():
    assert step(cond("False"), Status.OK) is None
    first = step(cond("False"), Status.UNKNOWN, "first error")
    assert step(first, Status.UNKNOWN, "second error") is None
    assert first.message == "first error"


def test_true_to_true_updates_only_on_reason_or_flagged_message_change():
    current = cond("True", "KubeletUnhealthy", "bad")
    assert step(current, Status.PROBLEM, "bad") is None
    assert step(current, Status.PROBLEM, "worse") is None  # the flag is off by default
    changed = step(current, Status.PROBLEM, "worse", message_change_updates=True)
    assert changed.message == "worse" and changed.transition == 99.0
    other_reason = next_condition(
        current,
        Status.PROBLEM,
        "bad",
        reason="Other",
        healthy_reason="KubeletIsHealthy",
        healthy_message=DEFAULT_MESSAGE,
        now=5.0,
    )
    assert other_reason.reason == "Other" and other_reason.transition == 5.0


def test_change_event_text_and_severity():
    event = change_event(cond("True", "KubeletUnhealthy", 'said "no"'))
    assert event == Event(
        "Warning",
        "KubeletUnhealthy",
        "Node condition KubeletUnhealthy is now: True, reason: KubeletUnhealthy, "
        'message: "said \\"no\\""',
    )
    assert change_event(cond("Unknown")).type == "Normal"
    assert change_event(cond("False")).type == "Normal"


def spec(**overrides):
    fields = dict(
        name="kubelet",
        condition="KubeletUnhealthy",
        permanent=True,
        healthy_message=DEFAULT_MESSAGE,
        **DEFAULTS,
    )
    fields.update(overrides)
    return CheckSpec(**fields)


def test_table_starts_unknown_to_us_and_reports_only_known_conditions():
    clock = FakeClock()
    table = ConditionTable([spec()], clock)
    assert table.snapshot()[1] == []
    assert table.apply(spec(), Status.OK, "") == []  # False -> False: no event ...
    assert [c.status for c in table.snapshot()[1]] == ["False"]  # ... but now known and sent
    events = table.apply(spec(), Status.PROBLEM, "down")
    assert events == [change_event(table.get("KubeletUnhealthy"))]
    assert table.get("KubeletUnhealthy").transition == clock.time()


def test_adopt_takes_the_nodes_status_so_a_restart_does_not_reset_to_false():
    table = ConditionTable([spec()], FakeClock())
    adopted = table.adopt(
        [
            {
                "type": "KubeletUnhealthy",
                "status": "True",
                "reason": "KubeletUnhealthy",
                "message": "was bad",
                "lastTransitionTime": "2024-01-02T03:04:05Z",
            },
            {"type": "Ready", "status": "True"},  # not ours: left alone
        ]
    )
    assert adopted == ["KubeletUnhealthy"]
    current = table.get("KubeletUnhealthy")
    assert (current.status, current.message, current.transition) == ("True", "was bad", 1704164645)
    assert table.apply(spec(), Status.PROBLEM, "was bad") == []  # still True: nothing to say
    assert table.apply(spec(), Status.OK, "")[0].type == "Normal"  # recovery is an event


def test_adopt_never_overrides_a_fresh_result():
    table = ConditionTable([spec()], FakeClock())
    table.apply(spec(), Status.PROBLEM, "fresh")
    assert table.adopt([{"type": "KubeletUnhealthy", "status": "False"}]) == []
    assert table.get("KubeletUnhealthy").status == "True"


def test_adopt_ignores_malformed_entries():
    table = ConditionTable([spec()], FakeClock())
    assert table.adopt([None, "x", {"type": "KubeletUnhealthy", "status": "Maybe"}]) == []
    assert table.adopt(None) == []


def test_rule_for_another_condition_changes_nothing():
    table = ConditionTable([spec()], FakeClock())
    assert table.apply(spec(condition="Other"), Status.PROBLEM, "x") == []
    assert table.snapshot()[1] == []


def test_temporary_checks_raise_warning_for_problem_and_unknown_only():
    temp = spec(permanent=False, reason="ConntrackFull")
    assert temporary_events(temp, Status.OK, "fine") == []
    assert temporary_events(temp, Status.PROBLEM, "full") == [
        Event("Warning", "ConntrackFull", "full")
    ]
    assert temporary_events(temp, Status.UNKNOWN, "?") == [Event("Warning", "ConntrackFull", "?")]


def test_problem_metrics_follow_npd():
    from prometheus_client import generate_latest

    from healthcheck._agent.metrics import Metrics

    temp = spec(name="conntrack", permanent=False, reason="ConntrackFull", condition="")
    metrics = Metrics([spec(), temp])
    text = generate_latest(metrics.registry).decode()
    assert 'problem_counter{reason="ConntrackFull"} 0.0' in text
    assert 'problem_gauge{reason="KubeletUnhealthy",type="KubeletUnhealthy"} 0.0' in text
    metrics.problems([Event("Warning", "KubeletUnhealthy", "x"), Event("Normal", "Ok", "y")])
    metrics.conditions([cond("True", "KubeletUnhealthy", "bad")])
    metrics.conditions([cond("Unknown", "KubeletIsHealthy", "?")])
    text = generate_latest(metrics.registry).decode()
    assert 'problem_counter{reason="KubeletUnhealthy"} 1.0' in text
    assert 'problem_counter{reason="Ok"}' not in text
    # the reason previously recorded for the type is zeroed: at most one reason per type is 1
    assert 'problem_gauge{reason="KubeletUnhealthy",type="KubeletUnhealthy"} 0.0' in text
    assert 'problem_gauge{reason="KubeletIsHealthy",type="KubeletUnhealthy"} 0.0' in text


RESULTS = st.lists(
    st.tuples(st.sampled_from(list(Status)), st.sampled_from(["a", "b", "c"])), max_size=30
)


@given(RESULTS)
def test_any_sequence_keeps_npd_invariants(results):
    clock = FakeClock()
    table = ConditionTable([spec()], clock)
    previous = None
    for status, message in results:
        clock.advance(1)
        events = table.apply(spec(), status, message)
        current = table.get("KubeletUnhealthy")
        # before the first result the condition is NPD's initial False/default
        changed = current.status != "False" if previous is None else current != previous
        # an event exactly when the condition changed, and it describes the new condition
        assert events == ([change_event(current)] if changed else [])
        if current.status == "True":
            assert current.reason == "KubeletUnhealthy"
        else:
            assert current.reason == "KubeletIsHealthy"
        if current.status == "False":
            assert current.message == DEFAULT_MESSAGE
        if changed:
            assert current.transition == clock.time()
        previous = current
