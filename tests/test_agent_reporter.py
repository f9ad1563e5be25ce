"""The reporter against the API server double: fail-safe start, batching, heartbeat, faults.

The double (tests/k8s_double.py) is a real HTTP server on loopback standing in for the API
server, which cannot run here. Timing is driven by a fake clock, not by sleeping.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from healthcheck import Status
from healthcheck.agent.clock import FakeClock
from healthcheck.agent.conditions import ConditionTable, Event
from healthcheck.agent.config import CheckSpec
from healthcheck.agent.events import EventCorrelator
from healthcheck.agent.kube import STRATEGIC_MERGE, KubeApi, load_client_config
from healthcheck.agent.reporter import Reporter

from .k8s_double import write_kubeconfig

NODE = "node-1"


def spec(condition="KubeletUnhealthy", reason="KubeletUnhealthy"):
    return CheckSpec(
        name=condition.lower(),
        condition=condition,
        reason=reason,
        permanent=True,
        healthy_reason=condition + "Healthy",
        healthy_message="fine",
    )


@pytest.fixture
def make(double, tmp_path):
    def build(specs=None, timeout=5.0, **kw):
        api = KubeApi(load_client_config(write_kubeconfig(tmp_path / "kc", double.url)), timeout)
        clock = FakeClock()
        table = ConditionTable(list(specs or [spec()]), clock)
        correlator = EventCorrelator(NODE, "default", "healthcheck-agent", clock)
        kw.setdefault("rng", random.Random(1))
        reporter = Reporter(api, NODE, table, correlator, clock, heartbeat=300, **kw)
        return reporter, table, clock

    return build


def patches(double):
    return [r for r in double.requests if r.method == "PATCH" and r.path.endswith("/status")]


def test_fail_safe_start_adopts_the_nodes_conditions_before_any_patch(double, make):
    double.add_node(
        NODE,
        [
            {
                "type": "KubeletUnhealthy",
                "status": "True",
                "reason": "Bad",
                "message": "broken before restart",
                "lastTransitionTime": "2024-05-01T00:00:00Z",
            }
        ],
    )
    reporter, table, clock = make()
    reporter.step()
    assert [r.method for r in double.requests] == ["GET"]
    assert table.get("KubeletUnhealthy").status == "True"
    assert double.conditions(NODE)["KubeletUnhealthy"]["message"] == "broken before restart"
    events = table.apply(spec(), Status.OK, "")
    reporter.record(events)
    reporter.changed()
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    cond = double.conditions(NODE)["KubeletUnhealthy"]
    assert (cond["status"], cond["reason"]) == ("False", "KubeletUnhealthyHealthy")
    event = next(iter(double.events.values()))
    assert event["reason"] == "KubeletUnhealthyHealthy" and event["type"] == "Normal"
    assert event["involvedObject"]["uid"] == "uid-1"


def test_changes_in_one_window_are_one_patch_with_all_conditions(double, make):
    specs = (spec("A", "ABad"), spec("B", "BBad"))
    reporter, table, clock = make(specs)
    reporter.step()
    table.apply(specs[0], Status.PROBLEM, "a down")
    reporter.changed()
    assert reporter.step() == pytest.approx(0.5)  # waits for the batch window
    clock.advance(0.3)
    table.apply(specs[1], Status.PROBLEM, "b down")
    reporter.changed()
    reporter.step()
    assert patches(double) == []
    clock.advance(0.2)
    reporter.step()
    sent = patches(double)
    assert len(sent) == 1
    assert sent[0].content_type == STRATEGIC_MERGE
    body = json.loads(sent[0].body)
    assert [c["type"] for c in body["status"]["conditions"]] == ["A", "B"]
    assert all(c["lastHeartbeatTime"] for c in body["status"]["conditions"])


def test_heartbeat_only_at_the_period_when_nothing_changes(double, make):
    reporter, table, clock = make()
    reporter.step()
    table.apply(spec(), Status.OK, "")
    reporter.changed()
    clock.advance(0.5)
    reporter.step()
    assert len(patches(double)) == 1
    assert reporter.step() == pytest.approx(300)
    clock.advance(299)
    reporter.step()
    table.apply(spec(), Status.OK, "")  # no change
    reporter.step()
    assert len(patches(double)) == 1
    clock.advance(1)
    reporter.step()
    assert len(patches(double)) == 2
    clock.advance(300 * 3)
    for _ in range(3):
        reporter.step()
    assert len(patches(double)) == 3  # one overdue heartbeat, not one per missed period


@pytest.mark.parametrize("code", [500, 503, 409])
def test_server_errors_keep_state_and_retry_with_backoff(double, make, code):
    reporter, table, clock = make()
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    double.inject((code,), (code,))
    clock.advance(0.5)
    wait1 = reporter.step()
    clock.advance(wait1)
    wait2 = reporter.step()
    assert reporter.failures == 2 and 0 < wait1 <= 0.5 and 0.5 <= wait2 <= 1.0
    clock.advance(wait2)
    reporter.step()
    assert reporter.failures == 0
    assert double.conditions(NODE)["KubeletUnhealthy"]["status"] == "True"


def test_backoff_is_capped_so_resend_follows_the_servers_return_within_10s(double, make):
    reporter, table, clock = make()
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    double.inject(*[(503,)] * 20)
    clock.advance(0.5)
    waits = []
    for _ in range(20):
        waits.append(reporter.step())
        clock.advance(waits[-1])
    assert max(waits) <= 8.0 and waits[-1] >= 4.0
    reporter.step()
    assert double.conditions(NODE)["KubeletUnhealthy"]["status"] == "True"


def test_429_retry_after_is_honoured(double, make):
    reporter, table, clock = make()
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    double.inject((429, 7))
    clock.advance(0.5)
    assert reporter.step() == pytest.approx(7)
    clock.advance(6.9)
    reporter.step()
    assert len(patches(double)) == 1
    clock.advance(0.1)
    reporter.step()
    assert len(patches(double)) == 2 and reporter.failures == 0


def test_unreachable_server_then_everything_is_resent_when_it_returns(double, make):
    reporter, table, clock = make()
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    reporter.record([Event("Warning", "R", "while away")])
    double.go_down()
    clock.advance(0.5)
    for _ in range(5):
        clock.advance(reporter.step())
    assert reporter.failures == 5 and "unreachable" in reporter.last_error
    double.come_back()
    reporter.step()
    assert double.conditions(NODE)["KubeletUnhealthy"]["status"] == "True"
    assert [e["message"] for e in double.events.values()] == ["while away"]


def test_hanging_server_times_out_and_is_retried(double, make):
    reporter, table, clock = make(timeout=0.3)
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    double.inject(("hang", 2))
    clock.advance(0.5)
    started = time.monotonic()
    wait = reporter.step()
    assert time.monotonic() - started < 1.5
    assert reporter.failures == 1 and wait > 0
    clock.advance(wait)
    reporter.step()
    assert double.conditions(NODE)["KubeletUnhealthy"]["status"] == "True"


def test_event_queue_is_bounded_dropping_the_oldest(double, make):
    reporter, _table, _clock = make(max_events=3)
    double.go_down()
    reporter.record([Event("Warning", f"R{i}", "x") for i in range(5)])
    assert reporter.pending_events() == 3 and reporter.events_dropped == 2
    double.come_back()
    reporter.step()
    assert sorted(e["reason"] for e in double.events.values()) == ["R2", "R3", "R4"]


def test_identical_events_patch_count_and_recreate_after_404(double, make):
    reporter, _table, clock = make()
    reporter.step()
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    clock.advance(1)
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    (event,) = double.events.values()
    assert event["count"] == 2
    patch = next(r for r in double.requests if r.method == "PATCH" and "/events/" in r.path)
    assert patch.content_type == STRATEGIC_MERGE
    assert set(json.loads(patch.body)) == {"count", "lastTimestamp", "message"}
    double.events.clear()  # expired on the server
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    (event,) = double.events.values()
    assert event["count"] == 3


def test_event_rejected_by_the_server_is_dropped_not_retried_forever(double, make):
    reporter, _table, _clock = make()
    reporter.step()
    reporter.record([Event("Warning", "R", "x"), Event("Warning", "S", "y")])
    double.inject((422,))
    reporter.step()
    assert reporter.failures == 0 and reporter.pending_events() == 0
    assert [e["reason"] for e in double.events.values()] == ["S"]


def test_missing_node_is_retried_and_nothing_is_patched(double, make):
    double.nodes.clear()
    reporter, table, _clock = make()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    reporter.step()
    assert reporter.failures == 1 and "404" in reporter.last_error
    assert patches(double) == []
