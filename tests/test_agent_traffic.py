"""The agent's API-traffic controls: token bucket, per-node spread, their config keys, and how
the reporter uses them, against the real kube-apiserver and the double (``kube`` fixture).

Time is a fake clock everywhere: the bucket, the spread and the reporter read it, so nothing
here sleeps to make a delay happen.
"""

from __future__ import annotations

import random
import time

import pytest

from healthcheck import Result, Status
from healthcheck._agent.clock import FakeClock
from healthcheck._agent.conditions import ConditionTable
from healthcheck._agent.config import ConfigError, parse_config
from healthcheck._agent.events import EventCorrelator
from healthcheck._agent.kube import ApiError, KubeApi, load_client_config
from healthcheck._agent.main import Agent, traffic_controls
from healthcheck._agent.ratelimit import RateLimitedApi, TokenBucket, limited
from healthcheck._agent.reporter import Reporter
from healthcheck._agent.scheduler import Report
from healthcheck._agent.spread import Spread, node_seed, urgent
from healthcheck._agent.traffic import TrafficSettings, parse_traffic

from .test_agent_reporter import spec

# ------------------------------------------------------------------------- token bucket


def test_bucket_starts_full_then_refills_at_qps():
    clock = FakeClock()
    bucket = TokenBucket(0.5, 2, clock)
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]  # the burst
    assert bucket.take() == pytest.approx(2.0)  # one token per 2 s at 0.5/s
    clock.advance(1.0)
    assert bucket.take() == pytest.approx(1.0)  # a refusal takes nothing
    clock.advance(1.0)
    assert bucket.take() == 0.0
    clock.advance(100.0)  # never more than the burst, however long it was idle
    assert [bucket.take(), bucket.take()] == [0.0, 0.0]
    assert bucket.take() > 0


def test_bucket_rejects_settings_that_would_never_grant_a_token():
    with pytest.raises(ValueError):
        TokenBucket(0, 1, FakeClock())
    with pytest.raises(ValueError):
        TokenBucket(1, 0, FakeClock())


def test_limited_is_a_no_op_at_qps_zero():
    api = object()
    assert limited(api, 0, 1, FakeClock()) is api
    assert isinstance(limited(api, 1, 1, FakeClock()), RateLimitedApi)


def test_a_call_without_a_token_is_not_sent_and_fails_like_a_429(kube, tmp_path):
    api = KubeApi(load_client_config(kube.kubeconfig(tmp_path)))
    clock = FakeClock()
    gated = RateLimitedApi(api, TokenBucket(0.25, 1, clock))
    assert gated.get_node(kube.node)["metadata"]["name"] == kube.node
    with pytest.raises(ApiError) as caught:
        gated.get_node(kube.node)
    assert caught.value.status == 429 and caught.value.retry_after == pytest.approx(4.0)
    assert "client-side rate limit" in str(caught.value)
    assert gated.throttled == 1
    assert [c.method for c in kube.requests()] == ["GET"]  # the refused call never left
    clock.advance(4.0)
    gated.get_node(kube.node)
    assert [c.method for c in kube.requests()] == ["GET", "GET"]


# ------------------------------------------------------------------------------ spread


def test_spread_is_reproducible_per_node_and_differs_between_nodes():
    a1, a2 = Spread("node-a", 300, 30), Spread("node-a", 300, 30)
    b = Spread("node-b", 300, 30)
    assert a1.startup_offset == a2.startup_offset != b.startup_offset
    assert [a1.change_delay() for _ in range(5)] == [a2.change_delay() for _ in range(5)]
    offsets = [Spread(f"n{i}", 300, 0).startup_offset for i in range(2000)]
    assert all(0 <= o <= 300 for o in offsets)
    # spread over the whole window, not bunched: every fifth of it gets its share
    fifths = [sum(1 for o in offsets if k * 60 <= o < (k + 1) * 60) for k in range(5)]
    assert min(fifths) > 300, fifths
    assert node_seed("node-a") == node_seed("node-a") != node_seed("node-b")


def test_zero_windows_mean_no_delay():
    spread = Spread("n", 0, 0)
    assert spread.startup_offset == 0.0 and spread.change_delay() == 0.0
    with pytest.raises(ValueError):
        Spread("n", -1, 0)


def test_only_false_conditions_may_wait():
    table = ConditionTable([spec("A"), spec("B")], FakeClock())
    table.apply(spec("A"), Status.OK, "")
    assert not urgent(table.snapshot()[1])
    table.apply(spec("B"), Status.UNKNOWN, "cannot tell")
    assert urgent(table.snapshot()[1])


# ---------------------------------------------------------------------- configuration


def test_traffic_keys_have_safe_defaults_and_are_parsed():
    config = parse_config({}, {})
    assert (config.traffic.qps, config.traffic.burst) == (5.0, 10)
    assert (config.traffic.startup_spread, config.traffic.change_spread) == (300.0, 0.0)
    config = parse_config(
        {"apiQPS": 0, "apiBurst": 1, "startupSpread": "0s", "changeSpread": "30s"}, {}
    )
    assert (config.traffic.qps, config.traffic.burst) == (0.0, 1)
    assert (config.traffic.startup_spread, config.traffic.change_spread) == (0.0, 30.0)
    assert not config.traffic.read_spread  # the default: a restarted agent reads at once
    assert parse_config({"startupReadSpread": True}, {}).traffic.read_spread


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"apiQPS": "fast"}, "apiQPS"),
        ({"apiQPS": -1}, "apiQPS"),
        ({"apiQPS": float("nan")}, "apiQPS"),
        ({"apiQPS": True}, "apiQPS"),
        ({"apiBurst": 0}, "apiBurst"),
        ({"apiBurst": 2.5}, "apiBurst"),
        ({"startupSpread": 300}, "startupSpread"),
        ({"startupSpread": "2h"}, "startupSpread"),
        ({"changeSpread": "-1s"}, "changeSpread"),
        ({"changeSpread": "soon"}, "changeSpread"),
        ({"startupReadSpread": "yes"}, "startupReadSpread"),
    ],
)
def test_bad_traffic_settings_are_one_line_naming_the_key(data, key):
    with pytest.raises(ConfigError) as caught:
        parse_config(data, {})
    message = str(caught.value)
    assert message.startswith(f"{key}:") and "\n" not in message
    with pytest.raises(ValueError):
        parse_traffic(data)


def test_agent_refuses_a_bad_traffic_key_with_exit_2(run_cli, tmp_path):
    config = tmp_path / "agent.yaml"
    config.write_text("apiBurst: 0\nchecks: []\n")
    result = run_cli("agent", "--config", str(config), "--check-config")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "apiBurst" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------- in the reporter


@pytest.fixture
def make_reporter(kube, tmp_path):
    """A reporter on a fake clock with the given traffic settings, as Agent wires it."""

    def build(settings: TrafficSettings, specs=None):
        clock = FakeClock()
        api = KubeApi(load_client_config(kube.kubeconfig(tmp_path)))
        api, spread = traffic_controls(api, kube.node, settings, clock)
        table = ConditionTable(list(specs or [spec()]), clock)
        correlator = EventCorrelator(kube.node, "default", "healthcheck-agent", clock)
        reporter = Reporter(
            api, kube.node, table, correlator, clock, heartbeat=300,
            rng=random.Random(1), spread=spread,
        )  # fmt: skip
        return reporter, table, clock

    return build


def healthy_on_node(kube):
    kube.add_node(
        kube.node,
        [
            {
                "type": "KubeletUnhealthy",
                "status": "False",
                "reason": "KubeletUnhealthyHealthy",
                "message": "fine",
                "lastTransitionTime": "2024-05-01T00:00:00Z",
            }
        ],
    )


def methods(kube):
    return [c.method for c in kube.requests()]


def test_a_restart_with_nothing_new_holds_its_first_patch_for_the_nodes_offset(kube, make_reporter):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(TrafficSettings(0, 1, 300, 0))
    offset = Spread(kube.node, 300, 0).startup_offset
    assert 0 < offset < 300
    reporter.step()  # the fail-safe GET is never held
    table.apply(spec(), Status.OK, "fine")  # the boot run: still healthy
    reporter.changed()
    clock.advance(1.0)
    wait = reporter.step()
    assert methods(kube) == ["GET"]
    assert wait == pytest.approx(offset - 1.0)
    clock.advance(wait)
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]
    # heartbeats keep the node's phase: the next one is a heartbeat period after that PATCH
    assert reporter.step() == pytest.approx(300.0, abs=1.0)


def test_a_problem_at_start_is_not_held(kube, make_reporter):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(TrafficSettings(0, 1, 300, 0))
    reporter.step()
    reporter.record(table.apply(spec(), Status.PROBLEM, "kubelet down"))
    reporter.changed()
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "POST", "PATCH"] or methods(kube) == ["GET", "PATCH", "POST"]
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "True"


def test_a_first_start_on_a_node_without_our_conditions_is_not_held(kube, make_reporter):
    reporter, table, clock = make_reporter(TrafficSettings(0, 1, 300, 0))
    reporter.step()
    table.apply(spec(), Status.OK, "fine")
    reporter.changed()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]


def test_a_problem_that_ends_the_startup_hold_still_waits_its_change_delay(kube, make_reporter):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(TrafficSettings(0, 1, 300, 30))
    reporter.step()  # GET; the adoption's batch drew the node's first change delay
    clock.advance(1.0)
    assert reporter.step() > 1.0 and methods(kube) == ["GET"]
    reporter.record(table.apply(spec(), Status.PROBLEM, "kubelet down"))
    reporter.changed()
    wait = reporter.step()
    same_node = Spread(kube.node, 300, 30)
    same_node.change_delay()
    assert wait == pytest.approx(0.5 + same_node.change_delay())
    assert methods(kube) == ["GET"]  # neither the PATCH nor its Event before that
    clock.advance(wait + 0.01)
    reporter.step()
    assert sorted(methods(kube)) == ["GET", "PATCH", "POST"]


# ------------------------------------------- startupReadSpread: the read waits too

HOLD_READ = TrafficSettings(0, 1, 300, 0, read_spread=True)


def test_a_restart_with_nothing_new_holds_its_read_and_first_patch_for_the_nodes_offset(
    kube, make_reporter
):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(HOLD_READ)
    offset = Spread(kube.node, 300, 0).startup_offset
    assert 0 < offset < 300
    assert reporter.sync()  # the agent's fail-safe start: the read waits for the slot too
    assert reporter.hold_result(spec(), Status.OK, "fine")  # the boot run: still healthy
    assert table.snapshot()[1] == []  # held, not applied before the node is read
    clock.advance(1.0)
    wait = reporter.step()
    assert methods(kube) == []
    assert wait == pytest.approx(offset - 1.0)
    clock.advance(wait)
    reporter.step()
    assert methods(kube) == ["GET"]
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]
    # applied after adoption, as if read first: no transition, no Event
    condition = kube.conditions(kube.node)["KubeletUnhealthy"]
    assert (condition["status"], condition["lastTransitionTime"]) == (
        "False",
        "2024-05-01T00:00:00Z",
    )
    assert kube.events() == []
    assert not reporter.hold_result(spec(), Status.OK, "fine")  # the hold is over
    # heartbeats keep the node's phase: the next one is a heartbeat period after that PATCH
    assert reporter.step() == pytest.approx(300.0, abs=1.0)


def test_a_problem_in_the_hold_reads_at_once_and_is_sent_after_the_batch_window(
    kube, make_reporter
):
    healthy_on_node(kube)
    reporter, _table, clock = make_reporter(HOLD_READ)
    assert reporter.step() > 1.0 and methods(kube) == []
    clock.advance(1.0)
    assert reporter.hold_result(spec(), Status.PROBLEM, "kubelet down")
    assert reporter.step() == pytest.approx(0.5)  # read now; the PATCH waits 0.5 s
    assert methods(kube) == ["GET", "POST"]  # the Event goes at once, as without the hold
    clock.advance(0.5)
    reporter.step()
    assert sorted(methods(kube)) == ["GET", "PATCH", "POST"]
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "True"
    assert [e["type"] for e in kube.events()] == ["Warning"]


def test_a_problem_the_node_already_carries_is_adopted_not_raised_again(kube, make_reporter):
    kube.add_node(
        kube.node,
        [
            {
                "type": "KubeletUnhealthy",
                "status": "True",
                "reason": "KubeletUnhealthy",
                "message": "kubelet down",
                "lastTransitionTime": "2024-05-01T00:00:00Z",
            }
        ],
    )
    reporter, _table, clock = make_reporter(HOLD_READ)
    reporter.step()
    assert reporter.hold_result(spec(), Status.PROBLEM, "kubelet down")
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]  # read at once; no Event: nothing changed
    condition = kube.conditions(kube.node)["KubeletUnhealthy"]
    assert condition["lastTransitionTime"] == "2024-05-01T00:00:00Z"


def test_a_recovery_held_to_the_slot_still_raises_its_event(kube, make_reporter):
    kube.add_node(
        kube.node,
        [
            {
                "type": "KubeletUnhealthy",
                "status": "True",
                "reason": "KubeletUnhealthy",
                "message": "kubelet down",
                "lastTransitionTime": "2024-05-01T00:00:00Z",
            }
        ],
    )
    reporter, _table, clock = make_reporter(HOLD_READ)
    assert reporter.hold_result(spec(), Status.OK, "fine")  # healthy again: nothing urgent
    wait = reporter.step()
    assert wait > 0 and methods(kube) == []
    clock.advance(wait)
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "POST", "PATCH"] or methods(kube) == ["GET", "PATCH", "POST"]
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "False"
    assert [e["type"] for e in kube.events()] == ["Normal"]


def test_with_the_read_held_a_first_start_is_held_too_then_sent_after_its_read(kube, make_reporter):
    reporter, _table, clock = make_reporter(HOLD_READ)
    reporter.hold_result(spec(), Status.OK, "fine")
    wait = reporter.step()
    assert wait > 0 and methods(kube) == []  # it cannot know the node is new without reading
    clock.advance(wait)
    reporter.step()
    clock.advance(0.5)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "False"


def test_a_failed_read_releases_the_held_results_into_the_table(kube, make_reporter):
    reporter, table, _clock = make_reporter(HOLD_READ)
    reporter.hold_result(spec(), Status.PROBLEM, "kubelet down")
    kube.remove_node(kube.node)  # the read fails (404)
    reporter.step()
    assert reporter.failures == 1 and not reporter.adopted
    assert [c.status for c in table.snapshot()[1]] == ["True"]  # visible locally at once
    assert not reporter.hold_result(spec(), Status.OK, "fine")  # no more holding


def test_once_reads_at_once_whatever_the_slot(kube, make_reporter):
    healthy_on_node(kube)
    reporter, _table, _clock = make_reporter(HOLD_READ)
    reporter.sync()  # run_once's early sync: held like the agent's
    reporter.hold_result(spec(), Status.OK, "fine")
    assert not reporter.settled() and "1 result held" in reporter.pending()
    assert reporter.flush(time.monotonic() + 10)
    assert methods(kube) == ["GET", "PATCH"]


def test_the_agent_routes_permanent_results_through_the_hold(kube, tmp_path):
    check = {"path": "/bin/true", "name": "k", "type": "permanent", "reason": "Down"}
    check |= {"condition": "KubeletUnhealthy", "healthyReason": "Up", "healthyMessage": "fine"}
    config = parse_config({"startupReadSpread": True, "checks": [check]}, {})
    api = KubeApi(load_client_config(kube.kubeconfig(tmp_path)))
    agent = Agent(config, api, kube.node, clock=FakeClock(), with_metrics=False)
    agent.on_report(Report(config.checks[0], Result(Status.PROBLEM, "down"), 0.0, False))
    assert agent.table.snapshot()[1] == [] and len(agent.reporter.held) == 1
    agent.reporter.step()
    assert [c.status for c in agent.table.snapshot()[1]] == ["True"]


def test_change_spread_holds_the_change_and_its_events_and_folds_a_flip_back(kube, make_reporter):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(TrafficSettings(0, 1, 0, 30))
    reporter.step()
    clock.advance(31.0)
    reporter.step()  # the post-adoption PATCH (held by a change delay too)
    assert methods(kube) == ["GET", "PATCH"]
    reporter.record(table.apply(spec(), Status.PROBLEM, "kubelet down"))
    reporter.changed()
    hold = reporter.step()
    assert 0.5 <= hold <= 30.5
    same_node = Spread(kube.node, 0, 30)
    same_node.change_delay()  # the first draw went to the adoption's batch
    assert hold == pytest.approx(0.5 + same_node.change_delay())
    assert methods(kube) == ["GET", "PATCH"]  # neither the PATCH nor its Event yet
    clock.advance(hold / 2)
    reporter.record(table.apply(spec(), Status.OK, "fine"))  # flips back meanwhile
    reporter.changed()
    clock.advance(hold)
    reporter.step()
    assert methods(kube).count("PATCH") == 2  # one PATCH for the flip and the flip back
    assert methods(kube).count("POST") == 2  # both Events: the only trace of the flap
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "False"
    assert [e["type"] for e in kube.events()] == ["Warning", "Normal"]


def test_rate_limit_defers_a_write_and_then_sends_the_latest_state(kube, make_reporter):
    healthy_on_node(kube)
    reporter, table, clock = make_reporter(TrafficSettings(0.1, 1, 0, 0))
    reporter.step()  # GET takes the only token
    clock.advance(0.5)
    wait = reporter.step()  # the post-adoption PATCH has no token: 10 s to the next one
    assert methods(kube) == ["GET"]
    assert wait == pytest.approx(9.5, abs=0.01)
    reporter.record(table.apply(spec(), Status.PROBLEM, "kubelet down"))
    reporter.changed()
    assert reporter.step() > 0 and methods(kube) == ["GET"]
    clock.advance(wait + 0.01)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH"]  # one PATCH, carrying the newest state
    assert kube.conditions(kube.node)["KubeletUnhealthy"]["status"] == "True"
    clock.advance(10.01)
    reporter.step()
    assert methods(kube) == ["GET", "PATCH", "POST"]  # the Event, one token later


def test_a_problem_that_ends_a_held_read_still_waits_its_change_delay(kube, make_reporter):
    healthy_on_node(kube)
    reporter, _table, clock = make_reporter(TrafficSettings(0, 1, 300, 30, read_spread=True))
    reporter.step()
    clock.advance(1.0)
    assert reporter.step() > 1.0 and methods(kube) == []
    reporter.hold_result(spec(), Status.PROBLEM, "kubelet down")
    wait = reporter.step()  # reads at once; the change then draws the node's first delay
    same_node = Spread(kube.node, 300, 30)
    assert wait == pytest.approx(0.5 + same_node.change_delay())
    assert methods(kube) == ["GET"]  # neither the PATCH nor its Event before that
    clock.advance(wait + 0.01)
    reporter.step()
    assert sorted(methods(kube)) == ["GET", "PATCH", "POST"]
