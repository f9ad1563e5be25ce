"""client-go's event correlator: count for identical events, aggregation, spam filter."""

from __future__ import annotations

from healthcheck._agent.clock import FakeClock
from healthcheck._agent.events import COMBINED_PREFIX, EventCorrelator


def correlator(clock=None):
    return EventCorrelator("node-1", "default", "healthcheck-agent", clock or FakeClock())


def test_first_event_is_created_with_node_reference_and_source():
    c = correlator()
    c.node_uid = "uid-9"
    action = c.correlate("Warning", "KubeletUnhealthy", "down")
    assert action.verb == "create"
    body = action.body
    assert body["metadata"]["name"].startswith("node-1.")
    assert body["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Node",
        "name": "node-1",
        "namespace": "default",
        "uid": "uid-9",
    }
    assert body["source"] == {"component": "healthcheck-agent", "host": "node-1"}
    assert (body["type"], body["reason"], body["message"], body["count"]) == (
        "Warning",
        "KubeletUnhealthy",
        "down",
        1,
    )


def test_identical_events_increase_count_on_the_same_object():
    clock = FakeClock()
    c = correlator(clock)
    first = c.correlate("Warning", "R", "same")
    clock.advance(7)
    second = c.correlate("Warning", "R", "same")
    third = c.correlate("Warning", "R", "same")
    assert second.verb == third.verb == "patch"
    assert second.name == third.name == first.name
    assert third.patch["count"] == 3 and third.patch["message"] == "same"
    assert second.patch["lastTimestamp"] != first.body["lastTimestamp"]
    assert third.body["firstTimestamp"] == first.body["firstTimestamp"]  # for a 404 re-create


def test_different_messages_make_different_events_until_aggregated():
    c = correlator()
    actions = [c.correlate("Warning", "R", f"message {i}") for i in range(12)]
    assert all(a.verb == "create" for a in actions[:9])
    assert len({a.name for a in actions[:9]}) == 9
    tenth = actions[9]
    assert tenth.verb == "create" and tenth.body["message"] == COMBINED_PREFIX + "message 9"
    # further similar events update the one aggregate event
    assert actions[10].verb == actions[11].verb == "patch"
    assert actions[10].name == actions[11].name == tenth.name
    assert actions[11].patch["message"] == COMBINED_PREFIX + "message 11"
    assert actions[11].patch["count"] == 3


def test_aggregation_window_expires_after_ten_minutes():
    clock = FakeClock()
    c = correlator(clock)
    for i in range(9):
        c.correlate("Warning", "R", f"m{i}")
    clock.advance(601)
    assert c.correlate("Warning", "R", "m9").body["message"] == "m9"


def test_spam_filter_allows_a_burst_of_25_then_one_per_five_minutes():
    clock = FakeClock()
    c = correlator(clock)
    allowed = [c.correlate("Warning", f"R{i}", "x") for i in range(30)]
    assert sum(a is not None for a in allowed) == 25
    assert c.filtered == 5
    # the bucket is per type: Normal events have their own
    assert c.correlate("Normal", "Ok", "x") is not None
    clock.advance(299)
    assert c.correlate("Warning", "Later", "x") is None
    clock.advance(1)
    assert c.correlate("Warning", "Later", "x") is not None
    assert c.correlate("Warning", "Later2", "x") is None


def test_event_names_are_unique_even_on_a_frozen_clock():
    c = correlator()
    names = {c.correlate("Normal", f"R{i}", "x").name for i in range(20)}
    assert len(names) == 20
