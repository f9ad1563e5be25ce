"""A small fleet (bench/fleet.py's simulator, N=20) against the real kube-apiserver: request
counts per scenario match the reporting model, for NPD's timing and for ours.

The agents' clock runs 20x (at rest) and 10x (storm) faster than real time, so ten simulated
minutes take 30 s; counts, not durations, are asserted.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import logging
import os
import random
import sys
import time
from pathlib import Path

import pytest

from healthcheck import Status

REPO = Path(__file__).resolve().parents[2]
N = 20
HEARTBEAT = 300.0


@pytest.fixture(scope="module")
def fleet_module():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        module = importlib.import_module("fleet")
    finally:
        sys.path.remove(str(REPO / "bench"))
    import healthcheck._agent.main as agent_main

    agent_logger = logging.getLogger(agent_main.__package__)
    saved = agent_logger.level
    agent_logger.setLevel(logging.CRITICAL + 1)  # the agents' log lines are not under test
    yield module
    agent_logger.setLevel(saved)


@pytest.fixture
def nodes(shipped_rbac, fleet_module):
    prefix = f"tf{os.getpid() % 1000}-{random.randrange(10**6)}-"
    names = [f"{prefix}{i:02d}" for i in range(N)]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": c, "status": "False", "reason": h, "message": m, "lastHeartbeatTime": stamp,
         "lastTransitionTime": stamp}
        for c, _r, h, m in fleet_module.CONDITIONS
    ]  # fmt: skip
    for name in names:
        shipped_rbac.create_node(name, conditions)
    yield names
    for name in names:
        shipped_rbac.delete_node(name)


def per_node(calls, what):
    return collections.Counter(c[4] for c in calls if c[1] == what)


def start(fleet_module, env, names, model, rec):
    fleet = fleet_module.Fleet(env, names, model, rec, 5, 2.0, 16)
    fleet.start()
    assert fleet.wait_ready(60) == len(names)
    return fleet


@pytest.mark.parametrize("model", ["npd", "ours"])
def test_at_rest_no_node_writes_more_than_once_per_heartbeat(
    fleet_module, shipped_rbac, nodes, model
):
    rec = fleet_module.Recorder()
    began = time.monotonic()
    fleet = start(fleet_module, shipped_rbac, nodes, model, rec)
    try:
        fleet.set_speed(20.0)
        time.sleep(32.0)  # 640 simulated seconds: two heartbeat periods and a bit
        simulated = fleet.clock.monotonic()
    finally:
        fleet.close()
    calls = list(rec.calls)
    assert per_node(calls, "GET nodes") == dict.fromkeys(nodes, 1)  # one fail-safe read each
    assert not any(c[1].endswith("events") for c in calls)  # nothing changed: no Events
    patches = per_node(calls, "PATCH nodes/status")
    # the start-up PATCH plus one heartbeat per period, never more (NPD's one write per node
    # per heartbeat period)
    assert all(patches[n] <= 3 for n in nodes), patches
    assert all(patches[n] >= 2 for n in nodes), patches
    by_node = collections.defaultdict(list)
    for c in calls:
        if c[1] == "PATCH nodes/status":
            by_node[c[4]].append(c[0])
    speed_gaps = [
        (b - a) * 20.0 for times in by_node.values() for a, b in itertools.pairwise(times)
    ]
    assert min(speed_gaps) >= HEARTBEAT * 0.9, sorted(speed_gaps)[:3]
    # the agents start within 2 s; then 2.5 s of real time is at least 40 simulated seconds
    early_reads = sum(1 for c in calls if c[1] == "GET nodes" and c[0] < began + 4.5)
    if model == "npd":
        # NPD: every agent reads its node and PATCHes its initial status right at start, so
        # the first calls of a rollout land within the start-up window
        assert all(patches[n] == 3 for n in nodes), patches
        assert early_reads == N
    else:
        # ours: the read and the first PATCH wait for the node's offset within startupSpread
        # (5m), so only the few nodes whose offset falls in those first seconds read early
        assert sum(patches.values()) < 3 * N
        assert early_reads < N // 2, early_reads
    assert simulated > 0


@pytest.mark.parametrize("model", ["npd", "ours-storm"])
def test_a_storm_costs_two_events_and_at_most_two_patches_per_node(
    fleet_module, shipped_rbac, nodes, model
):
    from healthcheck._agent.traffic import TrafficSettings

    # ours without the startup spread, so that no held first PATCH lands inside the storm
    fleet_module.MODELS["ours-storm"] = {
        **fleet_module.MODELS["ours"],
        "traffic": TrafficSettings(0.1, 1, 0, 30),
    }
    rec = fleet_module.Recorder()
    fleet = start(fleet_module, shipped_rbac, nodes, model, rec)
    try:
        speed = 10.0
        fleet.set_speed(speed)
        time.sleep(1.0)
        begin = time.monotonic()
        spec = fleet.config.checks[0]
        rng = random.Random(3)
        plan = []
        for node in fleet.nodes:
            u = rng.uniform(0, 5)
            plan += [(u, node, Status.PROBLEM), (u + 5, node, Status.OK)]
        for at, node, status in sorted(plan, key=lambda p: p[0]):
            time.sleep(max(0.0, begin + at / speed - time.monotonic()))
            node.report(spec, status, "blocked" if status else spec.healthy_message)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            events = per_node(rec.window(begin, time.monotonic()), "POST events")
            if sum(events.values()) >= 2 * N:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # anything still to come would show as a third write
    finally:
        fleet.close()
    calls = rec.window(begin, time.monotonic())
    assert per_node(calls, "POST events") == dict.fromkeys(nodes, 2)  # Warning, then Normal
    patches = per_node(calls, "PATCH nodes/status")
    if model == "npd":
        assert patches == dict.fromkeys(nodes, 2)  # one per change (flip, flip back)
    else:
        # one or two: a flip back within the node's change delay rides in the same PATCH
        assert set(patches) == set(nodes) and set(patches.values()) <= {1, 2}, patches
    for name in nodes:
        assert shipped_rbac.node_conditions(name)["KernelDeadlock"]["status"] == "False"
