"""Fleet scale (issue 16): N simulated nodes against a real kube-apiserver, ours vs NPD's timing.

Every simulated node runs the agent's own reporting code: :class:`healthcheck._agent.main.Agent`
(the condition state machine, client-go's event correlator, the reporter with its backoff, the
rate limit and spread of ``healthcheck._agent.traffic``) talking through the official kubernetes
client (:class:`~healthcheck._agent.kube.KubeApi`) with the agent ServiceAccount's token. Only the
checks are simulated: results are fed to ``Agent.on_report`` as the scheduler would. Nodes run
as threads of this one process (one thread per node, as the agent has one reporter thread);
``--nodes-per-client`` nodes share one HTTP connection pool.

Models (``--models``):

- ``npd``: NPD's reporting timing with the same code: all conditions False at start (its
  initial status, sent after the startup GET), changes sent after 1 s (its 1 s sync tick),
  heartbeat 5 min, no client-side limit (NPD's QPS/burst is 500/500) and no spread;
- ``ours``: the large-cluster settings (``apiQPS 0.05``, ``apiBurst 1``, ``startupSpread 5m``,
  ``startupReadSpread true``, ``changeSpread 30s``), 0.5 s batch, heartbeat 5 min, adoption of
  the node's conditions;
- ``defaults``: the shipped defaults (``apiQPS 5``, ``apiBurst 10``, ``startupSpread 5m``,
  ``startupReadSpread false``, ``changeSpread 0s``);
- ``ours10m``: ``ours`` with ``startupSpread 10m``;
- ``nospread``, ``nolimit``: ``ours`` without the spread / without the rate limit (controls
  measured one at a time).

Scenarios, per N and model:

- ``rollout``: every agent starts at a random moment within 60 s (nodes already carry the
  conditions of a previous run); measured for ``--rollout-window`` s;
- ``rest``: the same fleet carries on for ``--rest-duration`` simulated seconds, time
  compressed by ``--rest-speed`` (the agents' clock runs that much faster: heartbeat periods,
  spread and token bucket all scale); request counts are per simulated second;
- ``storm``: a fresh fleet starts and settles (unmeasured), then every node flips one
  condition to True at a random moment within 5 s and back 5 s later; measured for
  ``--storm-window`` s (80: long enough for the slowest write of ours to land). Before the
  storm the fleet's clock runs 330 simulated seconds fast, so every held first PATCH is out
  and the storm hits a fleet at rest (heartbeats go on in the background, in both models).

Figures come from the apiserver's own ``/metrics`` (``apiserver_request_total`` by verb and
resource, ``apiserver_request_duration_seconds`` p50/p99, etcd request counts), its ``/proc``
(CPU seconds, RSS), etcd's ``/metrics`` (``etcd_mvcc_put_total``, ``etcd_mvcc_txn_total``) and
the client side (peak request rate in 1 s and 5 s bins). The APF experiment (another client's
latency in a storm, with and without ``packaging/kubernetes/flowcontrol.yaml``) is
``bench/fleet_apf.py``, which uses this module's fleet.

    .venv/bin/python bench/fleet.py --nodes 250,500,1000,2000 --json /tmp/fleet.json
    .venv/bin/python bench/fleet.py --nodes 500 --models ours,nospread,nolimit,defaults
    .venv/bin/python bench/fleet.py --nodes 250,500,1000 --scenarios rollout --rest-duration 0

Needs ``tests/envtest.py`` (kube-apiserver + etcd) and the envtest binaries. Prints one JSON
line per phase as it goes, then a summary with a linear fit per figure and the 5,000-node value.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import contextlib
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from envtest import Envtest, EnvtestError, Identity  # noqa: E402, F401 - Identity: fleet_apf.py

import healthcheck._agent.main as agent_main  # noqa: E402
from healthcheck._agent.clock import Clock  # noqa: E402
from healthcheck._agent.config import parse_config  # noqa: E402
from healthcheck._agent.kube import ApiError, KubeApi, load_client_config  # noqa: E402
from healthcheck._agent.scheduler import Report  # noqa: E402
from healthcheck._agent.traffic import TrafficSettings  # noqa: E402
from healthcheck._protocol import Result, Status  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
ROLLOUT_SPAN = 60.0
STORM_FLIP_SPAN = 5.0
STORM_HOLD = 5.0
SETTLE_SIM = 330.0  # simulated seconds between a storm fleet's start and its storm
NODE_PREFIX = "fleet-"
# NPD's usual permanent conditions (config/kernel-monitor.json, docker-monitor.json).
CONDITIONS = (
    ("KernelDeadlock", "DockerHung", "KernelHasNoDeadlock", "kernel has no deadlock"),
    ("ReadonlyFilesystem", "FilesystemIsReadOnly", "FilesystemIsNotReadOnly",
     "Filesystem is not read-only"),
    ("FrequentKubeletRestart", "FrequentKubeletRestart", "NoFrequentKubeletRestart",
     "kubelet is functioning properly"),
)  # fmt: skip

MODELS = {
    "npd": {"traffic": TrafficSettings(0, 1, 0, 0), "batch": 1.0, "initial_false": True},
    "ours": {
        "traffic": TrafficSettings(0.05, 1, 300, 30, read_spread=True),
        "batch": 0.5,
        "initial_false": False,
    },
    "ours10m": {  # ours with startupSpread 10m: measure it with --rollout-window 690
        "traffic": TrafficSettings(0.05, 1, 600, 30, read_spread=True),
        "batch": 0.5,
        "initial_false": False,
    },
    "defaults": {"traffic": TrafficSettings(), "batch": 0.5, "initial_false": False},
    "nospread": {"traffic": TrafficSettings(0.05, 1, 0, 0), "batch": 0.5, "initial_false": False},
    "nolimit": {
        "traffic": TrafficSettings(0, 1, 300, 30, read_spread=True),
        "batch": 0.5,
        "initial_false": False,
    },
}


# ----------------------------------------------------------------------------- time


class ScaledClock(Clock):
    """The agents' clock: real time, or ``speed`` times faster (for the at-rest phase)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._speed = 1.0
        self._real0 = time.monotonic()
        self._sim0 = self._real0
        self._wall_offset = time.time() - self._real0

    def monotonic(self) -> float:
        with self._lock:
            return self._sim0 + (time.monotonic() - self._real0) * self._speed

    def time(self) -> float:
        return self.monotonic() + self._wall_offset

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        now_sim = self.monotonic()
        with self._lock:
            self._real0 = time.monotonic()
            self._sim0 = now_sim
            self._speed = float(speed)


# --------------------------------------------------------------------- measurement


class Recorder:
    """Every request that reached the wire: (real start, verb+resource, seconds, status, node)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, float, int, str]] = []

    def window(self, start: float, end: float) -> list[tuple[float, str, float, int]]:
        return [c for c in self.calls if start <= c[0] < end]


class CountingApi:
    """KubeApi with every call recorded (below the rate limit: throttled calls never count)."""

    def __init__(self, api, recorder: Recorder) -> None:
        self.api = api
        self.rec = recorder

    def _do(self, what: str, node: str, call, *args):
        t0 = time.monotonic()
        status = 200
        try:
            return call(*args)
        except ApiError as exc:
            status = exc.status
            raise
        finally:
            self.rec.calls.append((t0, what, time.monotonic() - t0, status, node))

    def get_node(self, name):
        return self._do("GET nodes", name, self.api.get_node, name)

    def patch_node_status(self, name, body):
        return self._do("PATCH nodes/status", name, self.api.patch_node_status, name, body)

    def create_event(self, namespace, body):
        node = body["involvedObject"]["name"]
        return self._do("POST events", node, self.api.create_event, namespace, body)

    def patch_event(self, namespace, name, patch):
        node = name.rsplit(".", 1)[0]
        return self._do("PATCH events", node, self.api.patch_event, namespace, name, patch)


def _parse_metrics(text: str, names: tuple[str, ...]) -> list[tuple[str, dict, float]]:
    from prometheus_client.parser import text_string_to_metric_families

    wanted = "\n".join(
        line for line in text.splitlines() if line.startswith(names) or line.startswith("# TYPE")
    )
    out = []
    for family in text_string_to_metric_families(wanted):
        for sample in family.samples:
            if sample.name.startswith(names):
                out.append((sample.name, sample.labels, sample.value))
    return out


APISERVER_SERIES = (
    "apiserver_request_total",
    "apiserver_request_duration_seconds_bucket",
    "etcd_request_duration_seconds_count",
    "apiserver_flowcontrol_rejected_requests_total",
    "apiserver_flowcontrol_dispatched_requests_total",
)
ETCD_SERIES = ("etcd_mvcc_put_total", "etcd_mvcc_txn_total", "etcd_mvcc_range_total")


def find_pid(*needles: str) -> int | None:
    """The pid whose command line holds every needle (the daemons envtest started)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if all(n in cmdline for n in needles):
            return int(entry)
    return None


def proc_usage(pid: int | None) -> tuple[float, int, int]:
    """(CPU seconds, RSS KiB, peak RSS KiB) of ``pid``."""
    if pid is None:
        return 0.0, 0, 0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


class Server:
    """The envtest server plus what the bench reads from it."""

    def __init__(self, env: Envtest) -> None:
        self.env = env
        self.apiserver_pid = find_pid("kube-apiserver", f"--secure-port={env.port}")
        self.etcd_pid = find_pid("etcd", f"127.0.0.1:{env.etcd_port}")

    def snapshot(self) -> dict:
        status, body = self.env.request("GET", "/metrics", timeout=30)
        api = _parse_metrics(body.get("raw", ""), APISERVER_SERIES) if status == 200 else []
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.env.etcd_port}/metrics", timeout=10
        ) as r:
            etcd = _parse_metrics(r.read().decode(), ETCD_SERIES)
        cpu, rss, hwm = proc_usage(self.apiserver_pid)
        etcd_cpu, etcd_rss, _ = proc_usage(self.etcd_pid)
        return {
            "t": time.monotonic(),
            "api": api,
            "etcd": etcd,
            "cpu": cpu,
            "rss": rss,
            "hwm": hwm,
            "etcd_cpu": etcd_cpu,
            "etcd_rss": etcd_rss,
        }


def _sum_by(samples, name: str, keyfn) -> collections.Counter:
    out: collections.Counter = collections.Counter()
    for sample_name, labels, value in samples:
        if sample_name == name:
            key = keyfn(labels)
            if key is not None:
                out[key] += value
    return out


def _resource(labels) -> str:
    sub = labels.get("subresource", "")
    return labels.get("resource", "") + (f"/{sub}" if sub else "")


def _agent_call(labels) -> bool:
    return labels.get("resource") in ("nodes", "events") and labels.get("verb") in (
        "GET",
        "PATCH",
        "POST",
    )


def quantile(buckets: dict[float, float], q: float) -> float | None:
    """Prometheus' histogram_quantile over cumulative bucket counts (le -> count)."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return bounds[-1]


def server_delta(before: dict, after: dict, sim_seconds: float) -> dict:
    """Per-phase server figures: requests by verb/resource, latency, CPU, RSS, etcd writes."""

    def key(labels):
        if not _agent_call(labels):
            return None
        return f"{labels['verb']} {_resource(labels)}"

    req = _sum_by(after["api"], "apiserver_request_total", key)
    req.subtract(_sum_by(before["api"], "apiserver_request_total", key))

    def code(labels):
        return labels.get("code") if _agent_call(labels) else None

    codes = _sum_by(after["api"], "apiserver_request_total", code)
    codes.subtract(_sum_by(before["api"], "apiserver_request_total", code))

    def le(labels):
        return float(labels["le"]) if _agent_call(labels) else None

    buckets = _sum_by(after["api"], "apiserver_request_duration_seconds_bucket", le)
    buckets.subtract(_sum_by(before["api"], "apiserver_request_duration_seconds_bucket", le))

    def etcd_op(labels):
        op = labels.get("operation")
        return op if op in ("create", "update", "get", "listWithCount", "list") else None

    etcd_ops = _sum_by(after["api"], "etcd_request_duration_seconds_count", etcd_op)
    etcd_ops.subtract(_sum_by(before["api"], "etcd_request_duration_seconds_count", etcd_op))
    etcd_own = _sum_by(after["etcd"], "etcd_mvcc_put_total", lambda _: "put")
    etcd_own.update(_sum_by(after["etcd"], "etcd_mvcc_txn_total", lambda _: "txn"))
    etcd_own.subtract(_sum_by(before["etcd"], "etcd_mvcc_put_total", lambda _: "put"))
    etcd_own.subtract(_sum_by(before["etcd"], "etcd_mvcc_txn_total", lambda _: "txn"))
    real = after["t"] - before["t"]
    p50, p99 = quantile(dict(buckets), 0.5), quantile(dict(buckets), 0.99)
    total = sum(v for v in req.values() if v > 0)
    return {
        "requests": {k: int(v) for k, v in sorted(req.items()) if v > 0},
        "requests_total": int(total),
        "requests_per_s": round(total / sim_seconds, 2),
        "per_s_by_verb": {k: round(v / sim_seconds, 2) for k, v in sorted(req.items()) if v > 0},
        "codes": {k: int(v) for k, v in sorted(codes.items()) if v > 0},
        "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
        "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
        "apiserver_cpu_s": round(after["cpu"] - before["cpu"], 2),
        "apiserver_cpu_pct_of_core": round(100 * (after["cpu"] - before["cpu"]) / real, 1),
        "apiserver_cpu_s_per_sim_s": round((after["cpu"] - before["cpu"]) / sim_seconds, 4),
        "apiserver_rss_mib": round(after["rss"] / 1024),
        "apiserver_peak_rss_mib": round(after["hwm"] / 1024),
        "etcd_cpu_s": round(after["etcd_cpu"] - before["etcd_cpu"], 2),
        "apiserver_etcd_ops": {k: int(v) for k, v in sorted(etcd_ops.items()) if v > 0},
        "etcd_mvcc": {k: int(v) for k, v in sorted(etcd_own.items()) if v > 0},
        "real_s": round(real, 1),
        "sim_s": round(sim_seconds, 1),
    }


def client_figures(calls, start: float, speed: float) -> dict:
    """Peak rates (1 s and 5 s bins, in simulated seconds) and client-side latency."""
    if not calls:
        return {"calls": 0, "peak_1s": 0, "peak_5s_per_s": 0.0}
    bins1: collections.Counter = collections.Counter()
    bins5: collections.Counter = collections.Counter()
    writes5: collections.Counter = collections.Counter()
    for t0, what, *_rest in calls:
        sim = (t0 - start) * speed
        bins1[int(sim)] += 1
        bins5[int(sim // 5)] += 1
        if not what.startswith("GET"):
            writes5[int(sim // 5)] += 1
    latencies = sorted(c[2] for c in calls)
    errors = collections.Counter(c[3] for c in calls if c[3] != 200)
    return {
        "calls": len(calls),
        "peak_1s": max(bins1.values()),
        "peak_5s_per_s": round(max(bins5.values()) / 5, 1),
        "peak_5s_writes_per_s": round(max(writes5.values(), default=0) / 5, 1),
        "client_p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "client_p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1),
        "errors": dict(errors),
        "last_call_s": round((max(c[0] for c in calls) - start) * speed, 1),
    }


# ----------------------------------------------------------------------------- fleet


def agent_config(model: dict):
    data = {
        "metrics": "",
        "server": "",
        "heartbeatPeriod": "5m",
        "checks": [
            {
                "path": "/bin/true",
                "name": ctype,
                "type": "permanent",
                "condition": ctype,
                "reason": reason,
                "healthyReason": healthy,
                "healthyMessage": message,
            }
            for ctype, reason, healthy, message in CONDITIONS
        ],
    }
    config = parse_config(data, {})
    config.traffic = model["traffic"]
    return config


class SimNode:
    """One node's agent (the real Agent object) driven by its own thread."""

    def __init__(self, fleet: Fleet, name: str, api, delay: float) -> None:
        self.fleet = fleet
        self.name = name
        self.api = api
        self.delay = delay
        self.agent = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def report(self, spec, status: Status, message: str = "") -> None:
        self.agent.on_report(Report(spec, Result(status, message), 0.0, False))

    def _run(self) -> None:
        fleet = self.fleet
        if fleet.stop.wait(self.delay):
            return
        agent = agent_main.Agent(
            fleet.config, self.api, self.name, clock=fleet.clock, with_metrics=False
        )
        reporter = agent.reporter
        reporter.batch_window = reporter._window = fleet.model["batch"]
        self.agent = agent
        specs = fleet.config.checks
        if fleet.model["initial_false"]:
            for spec in specs:  # NPD's initial status: every condition False/default
                self.report(spec, Status.OK, spec.healthy_message)
        # run_forever's fail-safe start: adopt the node's conditions before any result
        deadline = time.monotonic() + agent_main.STARTUP_ADOPT_WAIT
        while not reporter.sync() and time.monotonic() < deadline and not fleet.stop.is_set():
            fleet.stop.wait(0.5)
        for spec in specs:  # the checks' boot batch: all healthy
            self.report(spec, Status.OK, spec.healthy_message)
        self.ready.set()
        # Reporter.run(), with waits converted to real time for the compressed phase.
        while not fleet.stop.is_set():
            reporter._wake.clear()
            wait = reporter.step()
            reporter._wake.wait(min(60.0, max(0.0, wait) / fleet.clock.speed))


class Fleet:
    """N SimNodes sharing ``nodes_per_client`` connection pools each."""

    def __init__(self, env, names, model_name, recorder, nodes_per_client, spread_s, seed):
        self.model = MODELS[model_name]
        self.config = agent_config(self.model)
        self.clock = ScaledClock()
        self.stop = threading.Event()
        configuration = load_client_config(str(env.kubeconfig("agent")))
        configuration.connection_pool_maxsize = max(4, nodes_per_client)
        rng = random.Random(seed)
        self.nodes = []
        api = None
        for i, name in enumerate(names):
            if i % nodes_per_client == 0:
                api = CountingApi(KubeApi(configuration), recorder)
            self.nodes.append(SimNode(self, name, api, rng.uniform(0, spread_s)))

    def start(self) -> None:
        for node in self.nodes:
            node.thread.start()

    def wait_ready(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            node.ready.wait(max(0.0, deadline - time.monotonic()))
        return sum(n.ready.is_set() for n in self.nodes)

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        for node in self.nodes:
            if node.agent is not None:
                node.agent.reporter._wake.set()

    def close(self) -> None:
        self.stop.set()
        for node in self.nodes:
            if node.agent is not None:
                node.agent.reporter._wake.set()
        for node in self.nodes:
            node.thread.join(5)

    def throttled(self) -> int:
        return sum(
            getattr(n.agent.reporter.api, "throttled", 0) for n in self.nodes if n.agent is not None
        )


def wait_quiet(recorder: Recorder, quiet: float, limit: float) -> float:
    """Wait until ``quiet`` seconds pass without a request (at most ``limit``); the end time."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        last = recorder.calls[-1][0] if recorder.calls else 0.0
        if time.monotonic() - max(last, start) >= quiet:
            break
        time.sleep(0.5)
    return time.monotonic()


# ----------------------------------------------------------------------------- phases


def ensure_nodes(env: Envtest, count: int, existing: list[str]) -> list[str]:
    """Create nodes up to ``count``, each carrying a previous run's (healthy) conditions."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {
            "type": ctype,
            "status": "False",
            "reason": healthy,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for ctype, _reason, healthy, message in CONDITIONS
    ]
    names = [f"{NODE_PREFIX}{i:05d}" for i in range(len(existing), count)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: env.create_node(n, conditions), names))
    return existing + names


def phase_rollout_rest(server, env, names, model, args, out) -> None:
    rec = Recorder()
    fleet = Fleet(env, names, model, rec, args.nodes_per_client, ROLLOUT_SPAN, args.seed)
    before = server.snapshot()
    start = time.monotonic()
    fleet.start()
    time.sleep(args.rollout_window)
    mid = server.snapshot()
    end = time.monotonic()
    emit(
        out,
        model,
        len(names),
        "rollout",
        server_delta(before, mid, end - start),
        client_figures(rec.window(start, end), start, 1.0),
        fleet,
    )
    if args.rest_duration <= 0:  # the rollout alone
        fleet.close()
        return
    fleet.set_speed(args.rest_speed)
    rest_start = time.monotonic()
    time.sleep(args.rest_duration / args.rest_speed)
    after = server.snapshot()
    rest_end = time.monotonic()
    sim = (rest_end - rest_start) * args.rest_speed
    emit(
        out,
        model,
        len(names),
        "rest",
        server_delta(mid, after, sim),
        client_figures(rec.window(rest_start, rest_end), rest_start, args.rest_speed),
        fleet,
    )
    fleet.close()


def phase_storm(server, env, names, model, args, out, victim=None, label="storm") -> dict:
    rec = Recorder()
    fleet = Fleet(env, names, model, rec, args.nodes_per_client, 5.0, args.seed + 1)
    fleet.start()
    ready = fleet.wait_ready(180)
    wait_quiet(rec, 3.0, 60.0)
    # Past the start-up: every agent has sent its first PATCH (ours hold it up to 5 min), so
    # the storm hits a fleet at rest, heartbeats going on in the background for both models.
    fleet.set_speed(50.0)
    time.sleep(SETTLE_SIM / 50.0)
    fleet.set_speed(1.0)
    wait_quiet(rec, 1.0, 15.0)  # let the settling writes land outside the measured window
    rng = random.Random(args.seed + 2)
    spec = fleet.config.checks[0]
    plan = []
    for node in fleet.nodes:
        if node.agent is None:
            continue
        u = rng.uniform(0, STORM_FLIP_SPAN)
        plan.append((u, node, Status.PROBLEM, "kernel: task blocked for more than 120 seconds"))
        plan.append((u + STORM_HOLD, node, Status.OK, spec.healthy_message))
    plan.sort(key=lambda p: p[0])
    if victim is not None:
        victim.mark("storm")
    before = server.snapshot()
    start = time.monotonic()
    for at, node, status, message in plan:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        node.report(spec, status, message)
    time.sleep(max(0.0, start + args.storm_window - time.monotonic()))
    end = time.monotonic()
    after = server.snapshot()
    if victim is not None:
        victim.mark("after")
    calls = rec.window(start, end)
    result = emit(
        out,
        model,
        len(names),
        label,
        server_delta(before, after, end - start),
        client_figures(calls, start, 1.0),
        fleet,
        ready=ready,
    )
    fleet.close()
    return result


def emit(out, model, n, scenario, server, client, fleet, **extra) -> dict:
    record = {"model": model, "nodes": n, "scenario": scenario, **server, **client}
    record["client_throttled"] = fleet.throttled()
    record.update(extra)
    out.append(record)
    print(json.dumps(record), flush=True)
    return record


# --------------------------------------------------------------------------- summary


def linear_fit(xs, ys) -> tuple[float, float]:
    """Least-squares y = a + b*x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if n < 2 or sxx == 0:
        return my, 0.0
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - b * mx, b


FIGURES = (
    "requests_per_s",
    "peak_1s",
    "peak_5s_per_s",
    "peak_5s_writes_per_s",
    "p99_ms",
    "apiserver_cpu_s_per_sim_s",
)


def summarise(records: list[dict], target: int = 5000) -> dict:
    """Per model and scenario: the figures by N, a linear fit, and the value at ``target``."""
    groups: dict = collections.defaultdict(list)
    for r in records:
        groups[(r["model"], r["scenario"])].append(r)
    summary = {}
    for (model, scenario), rows in sorted(groups.items()):
        rows.sort(key=lambda r: r["nodes"])
        entry = {"nodes": [r["nodes"] for r in rows]}
        for fig in FIGURES:
            values = [r.get(fig) for r in rows]
            entry[fig] = values
            pairs = [(r["nodes"], v) for r, v in zip(rows, values, strict=True) if v is not None]
            if len(pairs) >= 2:
                a, b = linear_fit([p[0] for p in pairs], [p[1] for p in pairs])
                entry[f"{fig}_fit"] = f"{a:.4g} + {b:.4g}*N"
                entry[f"{fig}_at_{target}"] = round(a + b * target, 2)
        summary[f"{model}/{scenario}"] = entry
    return summary


def markdown(report: dict) -> str:
    """Tables for the README: one per scenario, rows per N and model, then the fits."""
    lines = []
    records = report["records"]
    for scenario in dict.fromkeys(r["scenario"] for r in records):
        rows = sorted((r for r in records if r["scenario"] == scenario),
                      key=lambda r: (r["nodes"], r["model"]))  # fmt: skip
        lines += [
            f"**{scenario}**",
            "",
            "| N | model | requests/s by verb | peak 1 s | peak 5 s (/s) | writes peak 5 s (/s) "
            "| p50 / p99 ms | apiserver CPU s per s | etcd writes |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            verbs = ", ".join(f"{k} {v:g}" for k, v in r["per_s_by_verb"].items())
            etcd = sum(v for k, v in r["apiserver_etcd_ops"].items() if k in ("create", "update"))
            lines.append(
                f"| {r['nodes']} | {r['model']} | {verbs} | {r.get('peak_1s')} "
                f"| {r.get('peak_5s_per_s')} | {r.get('peak_5s_writes_per_s', '-')} "
                f"| {r['p50_ms']} / {r['p99_ms']} "
                f"| {r['apiserver_cpu_s_per_sim_s']} | {etcd} |"
            )
        lines.append("")
        fits = {k: v for k, v in report["summary"].items() if k.endswith(f"/{scenario}")}
        if any("requests_per_s_fit" in v for v in fits.values()):
            lines += [
                "| model | fit: requests/s | at 5,000 | fit: peak 5 s | at 5,000 "
                "| fit: CPU s per s | at 5,000 |",
                "|---|---|---|---|---|---|---|",
            ]
            for key, v in fits.items():
                if "requests_per_s_fit" not in v:
                    continue
                lines.append(
                    f"| {key.split('/')[0]} | {v['requests_per_s_fit']} "
                    f"| {v['requests_per_s_at_5000']} | {v.get('peak_5s_per_s_fit')} "
                    f"| {v.get('peak_5s_per_s_at_5000')} "
                    f"| {v.get('apiserver_cpu_s_per_sim_s_fit')} "
                    f"| {v.get('apiserver_cpu_s_per_sim_s_at_5000')} |"
                )
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="250,500,1000,2000")
    parser.add_argument("--models", default="npd,ours")
    parser.add_argument(
        "--scenarios", default="rollout,storm", help="rollout (includes rest), storm"
    )
    parser.add_argument("--rollout-window", type=float, default=75.0)
    parser.add_argument("--rest-duration", type=float, default=600.0, help="simulated seconds")
    parser.add_argument("--rest-speed", type=float, default=20.0)
    parser.add_argument("--storm-window", type=float, default=80.0, help="seconds measured")
    parser.add_argument("--nodes-per-client", type=int, default=5)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", help="write all records and the summary here")
    parser.add_argument("--markdown", metavar="JSON", help="print tables for a saved run, exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return
    sizes = sorted(int(n) for n in args.nodes.split(","))
    models = args.models.split(",")
    scenarios = args.scenarios.split(",")
    for model in models:
        if model not in MODELS:
            raise SystemExit(f"fleet: unknown model {model!r} (known: {', '.join(MODELS)})")
    # thousands of agents' log lines are not the figure
    logging.getLogger("healthcheck._agent").setLevel(logging.CRITICAL + 1)
    threading.stack_size(256 << 10)
    records: list[dict] = []
    report: dict = {
        "machine": f"{os.cpu_count()} cores, shared with other work",
        "args": vars(args),
    }
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        workdir = Path(tmp)
        try:
            with contextlib.ExitStack() as stack:
                env = Envtest(workdir / "main")
                stack.enter_context(env)
                env.start()
                env.kubectl("apply", "-f", str(REPO / "packaging" / "kubernetes" / "rbac.yaml"))
                server = Server(env)
                names: list[str] = []
                for n in sizes:
                    names = ensure_nodes(env, n, names)
                    for model in models:  # interleaved, so drift hits both models alike
                        if "rollout" in scenarios:
                            phase_rollout_rest(server, env, names[:n], model, args, records)
                        if "storm" in scenarios:
                            phase_storm(server, env, names[:n], model, args, records)
        except EnvtestError as exc:
            raise SystemExit(f"fleet: {exc}") from None
    report["records"] = records
    report["summary"] = summarise(records)
    print(json.dumps(report["summary"], indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
