"""The reporter against an API server: fail-safe start, batching, heartbeat, faults.

Tests taking ``kube`` run twice: against the real kube-apiserver (tests/envtest.py, the agent
as the shipped ServiceAccount) and against the double (tests/k8s_double.py), which also checks
the wire format. Tests taking ``double`` inject what the real server cannot be made to do on
demand: a 5xx/409 or 429 with Retry-After on the next request, a stalled answer, a 422 for one
event. Timing is driven by a fake clock, not by sleeping.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from healthcheck import Status
from healthcheck._agent.clock import FakeClock
from healthcheck._agent.conditions import ConditionTable, Event
from healthcheck._agent.config import CheckSpec
from healthcheck._agent.events import EventCorrelator
from healthcheck._agent.kube import STRATEGIC_MERGE, KubeApi, load_client_config
from healthcheck._agent.reporter import Reporter

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


def builder(kubeconfig: str, node: str):
    def build(specs=None, timeout=5.0, **kw):
        api = KubeApi(load_client_config(kubeconfig), timeout)
        clock = FakeClock()
        table = ConditionTable(list(specs or [spec()]), clock)
        correlator = EventCorrelator(node, "default", "healthcheck-agent", clock)
        kw.setdefault("rng", random.Random(1))
        reporter = Reporter(api, node, table, correlator, clock, heartbeat=300, **kw)
        return reporter, table, clock

    return build


@pytest.fixture
def make(double, tmp_path):
    """A reporter on a fake clock talking to the double (for injected faults)."""
    return builder(write_kubeconfig(tmp_path / "kc", double.url), NODE)


@pytest.fixture
def make_kube(kube, tmp_path):
    """A reporter on a fake clock talking to ``kube`` (the real server, then the double)."""
    return builder(kube.kubeconfig(tmp_path), kube.node)


def patches(double):
    return [r for r in double.requests if r.method == "PATCH" and r.path.endswith("/status")]


def test_fail_safe_start_adopts_the_nodes_conditions_before_any_patch(kube, make_kube):
    kube.add_node(
        kube.node,
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
    reporter, table, clock = make_kube()
    reporter.step()
    assert [c.method for c in kube.requests()] == ["GET"]
    assert table.get("KubeletUnhealthy").status == "True"
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["message"] == "broken before restart"
    events = table.apply(spec(), Status.OK, "")
    reporter.record(events)
    reporter.changed()
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    cond = kube.conditions(kube.node)["KubeletUnhealthy"]
    assert (cond["status"], cond["reason"]) == ("False", "KubeletUnhealthyHealthy")
    (event,) = kube.events()
    assert event["reason"] == "KubeletUnhealthyHealthy" and event["type"] == "Normal"
    assert event["involvedObject"]["uid"] == kube.node_uid(kube.node)


def test_changes_in_one_window_are_one_patch_with_all_conditions(kube, make_kube):
    specs = (spec("A", "ABad"), spec("B", "BBad"))
    reporter, table, clock = make_kube(specs)
    reporter.step()
    table.apply(specs[0], Status.PROBLEM, "a down")
    reporter.changed()
    assert reporter.step() == pytest.approx(0.5)  # waits for the batch window
    clock.advance(0.3)
    table.apply(specs[1], Status.PROBLEM, "b down")
    reporter.changed()
    reporter.step()
    assert kube.status_patches() == []
    clock.advance(0.2)
    reporter.step()
    assert len(kube.status_patches()) == 1
    conditions = kube.conditions(kube.node)
    assert [conditions[t]["status"] for t in ("A", "B")] == ["True", "True"]
    assert all(conditions[t]["lastHeartbeatTime"] for t in ("A", "B"))
    if kube.records_bodies:  # the wire format, as the double saw it
        (sent,) = patches(kube.double)
        assert sent.content_type == STRATEGIC_MERGE
        body = json.loads(sent.body)
        assert [c["type"] for c in body["status"]["conditions"]] == ["A", "B"]


def test_heartbeat_only_at_the_period_when_nothing_changes(kube, make_kube):
    reporter, table, clock = make_kube()
    reporter.step()
    table.apply(spec(), Status.OK, "")
    reporter.changed()
    clock.advance(0.5)
    reporter.step()
    assert len(kube.status_patches()) == 1
    first = kube.conditions(kube.node)["KubeletUnhealthy"]["lastHeartbeatTime"]
    assert reporter.step() == pytest.approx(300)
    clock.advance(299)
    reporter.step()
    table.apply(spec(), Status.OK, "")  # no change
    reporter.step()
    assert len(kube.status_patches()) == 1
    clock.advance(1)
    reporter.step()
    assert len(kube.status_patches()) == 2
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["lastHeartbeatTime"] > first
    clock.advance(300 * 3)
    for _ in range(3):
        reporter.step()
    assert len(kube.status_patches()) == 3  # one overdue heartbeat, not one per missed period


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


def test_unreachable_server_then_everything_is_resent_when_it_returns(kube, make_kube):
    reporter, table, clock = make_kube(timeout=2.0)
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    reporter.record([Event("Warning", "R", "while away")])
    kube.go_down()
    clock.advance(0.5)
    for _ in range(5):
        clock.advance(reporter.step())
    assert reporter.failures == 5 and "unreachable" in reporter.last_error
    kube.come_back()
    reporter.step()
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "True"
    assert [e["message"] for e in kube.events()] == ["while away"]


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


def test_event_queue_is_bounded_dropping_the_oldest(kube, make_kube):
    reporter, _table, _clock = make_kube(max_events=3, timeout=2.0)
    kube.go_down()
    reporter.record([Event("Warning", f"R{i}", "x") for i in range(5)])
    assert reporter.pending_events() == 3 and reporter.events_dropped == 2
    kube.come_back()
    reporter.step()
    assert sorted(e["reason"] for e in kube.events()) == ["R2", "R3", "R4"]


def test_identical_events_patch_count_and_recreate_after_404(kube, make_kube):
    reporter, _table, clock = make_kube()
    reporter.step()
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    clock.advance(1)
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    (event,) = kube.events()
    assert event["count"] == 2
    assert [c.method for c in kube.writes()] == ["POST", "PATCH"]
    if kube.records_bodies:
        patch = next(r for r in kube.double.requests if r.method == "PATCH")
        assert patch.content_type == STRATEGIC_MERGE
        assert set(json.loads(patch.body)) == {"count", "lastTimestamp", "message"}
    kube.delete_events()  # expired on the server
    reporter.record([Event("Warning", "R", "same")])
    reporter.step()
    (event,) = kube.events()
    assert event["count"] == 3


def test_event_rejected_by_the_server_is_dropped_not_retried_forever(double, make):
    reporter, _table, _clock = make()
    reporter.step()
    reporter.record([Event("Warning", "R", "x"), Event("Warning", "S", "y")])
    double.inject((422,))
    reporter.step()
    assert reporter.failures == 0 and reporter.pending_events() == 0
    assert [e["reason"] for e in double.events.values()] == ["S"]


def test_missing_node_is_retried_and_nothing_is_patched(kube, make_kube):
    kube.remove_node(kube.node)
    reporter, table, _clock = make_kube()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    reporter.step()
    assert reporter.failures == 1 and "404" in reporter.last_error
    assert kube.status_patches() == []


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000 + b"]" * 200_000,  # past json's recursion limit: RecursionError
        b'{"metadata": [], "status": {"conditions": [1, "x", null, {"type": []}]}}',
        b'{"status": {"conditions": {"type": "KubeletUnhealthy"}}}',
    ],
)
def test_a_reply_nobody_foresaw_is_a_failure_backed_off_not_the_end_of_reporting(
    double, make, body
):
    """Before: RecursionError from a deeply nested reply escaped step() and ended the reporter
    thread, leaving the agent running but reporting nothing. The double sends what the real
    server never would."""
    reporter, table, clock = make()
    double.inject(("raw", 200, body))
    wait = reporter.step()  # raised before
    assert reporter.failures == 1 or reporter.adopted
    assert "\n" not in reporter.last_error and len(reporter.last_error) <= 512
    clock.advance(wait)
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    clock.advance(1.0)
    reporter.step()
    assert reporter.failures == 0
    assert double.conditions(NODE)["KubeletUnhealthy"]["status"] == "True"
