"""Remediation's figures (issue 15), against a real kube-apiserver (tests/envtest.py), the agent
as its ServiceAccount with rbac.yaml + remediation/rbac.yaml.

Phase "latency": a real agent process with the maintenance-events check (``--interval``)
against the metadata emulator. The bench publishes an event due within the lead time and
measures, ``--trials`` times: (a) publish -> the check's next request to the emulator (the
check-interval part), (b) that request -> the node cordoned, (c) -> the drain started
(the record on the Node) and the pod's eviction. Between trials the event is withdrawn and the
node undone.

Phase "fleet": 20 remediation loops in this process (one per simulated node), all seeing the
event at once, ``maxConcurrent: 2``; each node's maintenance "happens" when its drain is done
(the condition clears). Prints the peak number of nodes cordoned by us (sampled every 20 ms),
the total time, and API requests per remediation (split: waiting for a slot / acting).

Phase "rest": two agent processes side by side for ``--duration`` seconds with the shipped
config/agent.yaml (every built-in checker), one with a ``remediation:`` section, one without
(the interleaved baseline); prints peak RSS (VmHWM) and CPU share of one core of each.

    .venv/bin/python bench/remediation.py [--phases latency,fleet,rest] [--duration 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import remediation_cluster as rc  # noqa: E402
from envtest import start_envtest  # noqa: E402
from metadata_emulator import MetadataEmulator  # noqa: E402

BIN = Path(sys.executable).parent
RBAC = HERE.parent / "packaging" / "kubernetes" / "rbac.yaml"
REMEDIATION = {
    "maxConcurrent": 1,
    "minInterval": "0s",
    "nodeGrace": "0s",
    "leaseDuration": "15s",
    "rules": [
        {
            "name": "maintenance",
            "when": {"condition": "MaintenanceScheduled"},
            "actions": ["taint", "cordon", "drain"],
            "leadTime": "30m",
            "minHold": "0s",
        },
        {
            "name": "not-ready",
            "when": {"condition": "Ready", "status": "False", "for": "5m"},
            "actions": ["taint"],
        },
    ],
}


def agent(env, tmp: Path, node: str, config: dict) -> subprocess.Popen:
    path = tmp / f"{node}.yaml"
    path.write_text(json.dumps(config))
    log = (tmp / f"{node}.log").open("wb")
    argv = [str(BIN / "healthcheck"), "agent", "--config", str(path)]
    argv += ["--kubeconfig", str(env.kubeconfig("agent")), "--node-name", node]
    return subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)


def poll_until(predicate, timeout=60.0, step=0.005):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return time.monotonic()
        time.sleep(step)
    raise SystemExit("bench: timed out")


def phase_latency(env, tmp: Path, trials: int, interval: str) -> dict:
    node, ns = "lat-node", "lat-ns"
    env.create_node(node)
    rc.make_namespace(env, ns)
    parts = {"check": [], "cordon": [], "drain_started": [], "evicted": []}
    with MetadataEmulator("alibaba") as emu:
        config = {
            "metrics": "",
            "server": "",
            "checks": [
                {
                    "checker": "maintenance-events",
                    "interval": interval,
                    "options": {"provider": "alibaba", "endpoint": emu.url, "state_dir": str(tmp)},
                }
            ],
            "remediation": REMEDIATION,
        }
        proc = agent(env, tmp, node, config)
        try:
            poll_until(lambda: env.node_conditions(node).get("MaintenanceScheduled"))
            for trial in range(trials):
                pod = f"web-{trial}"
                rc.make_pod(env, ns, pod, node)
                time.sleep(1.3)  # land somewhere inside the check's interval
                seen = emu.requests("GET")
                published = time.monotonic()
                emu.events = [
                    {
                        "event-id": f"e-{trial}",
                        "event-type": "SystemMaintenance.Reboot",
                        "event-status": "Scheduled",
                        "not-before": time.strftime(
                            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 600)
                        ),
                    }
                ]
                checked = poll_until(lambda seen=seen: emu.requests("GET") > seen, step=0.001)
                cordoned = poll_until(lambda: rc.node(env, node)["spec"].get("unschedulable"))
                drained = poll_until(
                    lambda: (
                        "drainStarted"
                        in rc.record(rc.node(env, node)).get("rules", {}).get("maintenance", {})
                    )
                )
                evicted = poll_until(
                    lambda pod=pod: rc.pod(env, ns, pod)["metadata"].get("deletionTimestamp")
                )
                parts["check"].append(checked - published)
                parts["cordon"].append(cordoned - checked)
                parts["drain_started"].append(drained - checked)
                parts["evicted"].append(evicted - checked)
                emu.events = []
                poll_until(lambda: rc.record(rc.node(env, node)) == {})
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "check_interval": interval,
        "trials": trials,
        **{
            f"{k}_s": {"mean": round(statistics.mean(v), 3), "max": round(max(v), 3)}
            for k, v in parts.items()
        },
    }


def phase_fleet(env, count: int = 20, slots: int = 2) -> dict:
    rc.clear_leases(env)
    ns = "fleet-ns"
    rc.make_namespace(env, ns)
    settings = {**REMEDIATION, "maxConcurrent": slots, "leaseDuration": "3s"}
    settings["rules"] = REMEDIATION["rules"][:1]
    fleet = []
    for i in range(count):
        name = f"fleet-{i}"
        env.create_node(name)
        rc.make_pod(env, ns, f"web-{i}", name)
        conditions, events = rc.Conditions(), rc.Events()
        ctl = rc.controller(env, name, settings, conditions, events, active_tick=0.1)
        fleet.append((name, conditions, events, ctl))
    at_start: dict[str, int] = {}

    def snapshot_on_start(name, ctl, events):
        def emit(event):
            if event.reason == "RemediationStarted":
                at_start[name] = ctl.api.requests
            events(event)

        return emit

    for name, _, events, ctl in fleet:
        ctl.emit_event = snapshot_on_start(name, ctl, events)
    peak, stop = [0], threading.Event()
    by_name = {name: conditions for name, conditions, _, _ in fleet}

    def watch():
        while not stop.is_set():
            _, body = env.request("GET", "/api/v1/nodes")
            ours = [
                n
                for n in body["items"]
                if n["metadata"]["name"] in by_name
                and n["spec"].get("unschedulable")
                and rc.record(n).get("cordoned")
            ]
            peak[0] = max(peak[0], len(ours))
            for n in ours:
                if "drain" in rc.record(n)["rules"].get("maintenance", {}).get("done", []):
                    by_name[n["metadata"]["name"]].set("MaintenanceScheduled", "False")
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.monotonic()
    for _, conditions, _, _ in fleet:
        conditions.set("MaintenanceScheduled", "True")
    for *_, ctl in fleet:
        ctl.start()
    poll_until(
        lambda: all("RemediationUndone" in e.reasons() for _, _, e, _ in fleet),
        timeout=300,
        step=0.05,
    )
    total = time.monotonic() - started
    stop.set()
    watcher.join(2)
    for *_, ctl in fleet:
        ctl.stop()
    requests = [ctl.api.requests for *_, ctl in fleet]
    waiting = [at_start[name] for name, *_ in fleet]
    return {
        "nodes": count,
        "max_concurrent": slots,
        "peak_cordoned_by_us": peak[0],
        "total_s": round(total, 1),
        "api_requests_per_remediation": round(sum(requests) / count, 1),
        "of_which_before_the_slot": round(sum(waiting) / count, 1),
        "of_which_acting_and_undoing": round((sum(requests) - sum(waiting)) / count, 1),
    }


def phase_rest(env, tmp: Path, duration: float) -> dict:
    from agent import all_checkers_config, proc_usage

    results = {}
    procs = {}
    for label in ("with-remediation", "baseline"):
        import yaml

        node = f"rest-{label}"
        env.create_node(node)
        path = tmp / f"{label}-base.yaml"
        all_checkers_config(path, True, None)
        config = yaml.safe_load(path.read_text())
        if label == "with-remediation":
            config["remediation"] = REMEDIATION
        procs[label] = agent(env, tmp, node, config)
    time.sleep(duration)
    for label, proc in procs.items():
        if proc.poll() is not None:
            raise SystemExit(
                f"bench: agent {label} exited: {(tmp / f'rest-{label}.log').read_text()[-300:]}"
            )
        cpu, hwm = proc_usage(proc.pid)
        results[label] = {
            "peak_rss_mib": round(hwm / 1024, 1),
            "cpu_share_of_one_core_pct": round(100 * cpu / duration, 3),
        }
        proc.terminate()
        proc.wait(10)
    results["duration_s"] = duration
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", default="latency,fleet,rest")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--interval", default="15s", help="the maintenance check's interval")
    parser.add_argument("--duration", type=float, default=300.0)
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    out = {"machine": "shared 2-core machine, other helpers' work running; figures are noisy"}
    with tempfile.TemporaryDirectory() as tmp_name, start_envtest(Path(tmp_name) / "env") as env:
        tmp = Path(tmp_name)
        env.kubectl("apply", "-f", str(RBAC))
        env.kubectl("apply", "-f", str(rc.REMEDIATION_RBAC))
        if "latency" in phases:
            out["latency"] = phase_latency(env, tmp, args.trials, args.interval)
            print(json.dumps(out["latency"]), flush=True)
        if "fleet" in phases:
            out["fleet"] = phase_fleet(env)
            print(json.dumps(out["fleet"]), flush=True)
        if "rest" in phases:
            out["rest"] = phase_rest(env, tmp, args.duration)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
