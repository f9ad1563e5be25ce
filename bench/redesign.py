"""Before/after the issue-14 redesign, interleaved in one run: one-shot cold start and agent RSS.

Two installed trees are compared, each given by its venv's ``bin`` directory (the "before" tree
is main at 1550e72, before the redesign began; the "after" tree is the one under test):

Cold start: ``healthcheck check conntrack`` against a proc tree in a temporary directory (so the
result, and the work done, is the same on every run and every machine), run ``--runs`` times on
each side, alternating before/after (the order flips every round, so neither side always runs
right after the other) with a bare ``python -c pass`` between them as the machine's own noise
floor. Prints median, p90, the after/before ratio of medians with a 95% bootstrap interval, the
peak RSS of one run (VmHWM, 5 runs each, the largest) and the modules each side loads.

Agent: one etcd + kube-apiserver (tests/envtest.py) with the shipped RBAC; the before-agent and
the after-agent start at the same moment, as the same ServiceAccount, each on its own Node, with
the same configuration (config/agent.yaml of this tree: every built-in checker at its default
interval, the cri check against a real containerd when this machine can run one, kubelet and
kube-proxy answered by healthy loopback servers, a stand-in systemctl so no repair touches the
machine, a private state directory per agent) for ``--agent-minutes``. Each agent's RSS (the
daemon and the programs it starts) is sampled every second with psutil; prints peak and mean
RSS, the daemon's own VmHWM, CPU seconds (its waited-for children included) and the
after/before ratios.

    .venv/bin/python bench/redesign.py --before /work/wt/before/.venv/bin \\
        --after .venv/bin [--runs 200] [--agent-minutes 15] [--skip-agent]

Figures from a machine other jobs share are noisy; only the interleaved ratios are meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from agent import (  # bench/agent.py: the same healthy world its rest phase measures the agent in
    TreeSampler,
    die_with_bench,
    proc_usage,
    standin_systemctl,
    start_runtime,
    stop_process,
)
from coldstart import RSS_PROBE, timed_run  # bench/coldstart.py: one run, and its VmHWM

REPO = Path(__file__).resolve().parent.parent
SIDES = ("before", "after")
# The probes run a console script as its shebang would: under -P (so the working directory,
# perhaps a source tree, is not on sys.path) with the script's directory first on sys.path.
# This one writes the names in sys.modules at the end (RSS_PROBE, from coldstart, the VmHWM).
MODULES_PROBE = (
    "import sys\n"
    "sys.argv = sys.argv[1:]\n"
    "sys.path.insert(0, sys.argv[0].rpartition('/')[0])\n"
    "try:\n"
    "    with open(sys.argv[0]) as fh:\n"
    "        code = compile(fh.read(), sys.argv[0], 'exec')\n"
    "    exec(code, {'__name__': '__main__'})\n"
    "finally:\n"
    "    sys.stderr.write('\\nMODULES ' + ' '.join(sys.modules) + '\\n')\n"
)
STARTUP_PROBE = "import sys; sys.stderr.write('\\nMODULES ' + ' '.join(sys.modules) + '\\n')"

# ------------------------------------------------------------------------------ statistics


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation between closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def bootstrap_ratio(before: list[float], after: list[float], rounds: int = 2000) -> tuple:
    """95% interval of median(after) / median(before), resampling both sides with replacement."""
    rng = random.Random(14)
    ratios = []
    for _ in range(rounds):
        a = statistics.median(rng.choices(after, k=len(after)))
        b = statistics.median(rng.choices(before, k=len(before)))
        ratios.append(a / b)
    return percentile(ratios, 0.025), percentile(ratios, 0.975)


# ------------------------------------------------------------------------------ cold start


def fake_proc(root: Path) -> str:
    """A proc tree with a conntrack table at 10%: the check reads it and reports OK."""
    netfilter = root / "sys" / "net" / "netfilter"
    netfilter.mkdir(parents=True)
    (netfilter / "nf_conntrack_count").write_text("26214\n")
    (netfilter / "nf_conntrack_max").write_text("262144\n")
    return str(root)


def probe(python: str, code: str, argv: list[str], marker: str) -> str:
    """Run ``code`` with ``argv``; what follows ``marker`` on its stderr. A failed check (exit
    code 2 or more: bad flags, an import error) stops the bench rather than measure it."""
    proc = subprocess.run([python, "-P", "-c", code, *argv], capture_output=True, text=True)
    if proc.returncode not in (0, 1) or marker not in proc.stderr:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return proc.stderr.rsplit(marker, 1)[1]


def one_shot_facts(python: str, argv: list[str]) -> dict:
    """Peak RSS (largest of 5 runs) and module count of one run of ``argv`` (a script)."""
    hwm = [int(probe(python, RSS_PROBE, argv, "VMHWM ").split()[0]) for _ in range(5)]
    modules = set(probe(python, MODULES_PROBE, argv, "MODULES ").split())
    startup = set(probe(python, STARTUP_PROBE, [], "MODULES ").split())
    return {
        "peak_rss_mib": round(max(hwm) / 1024, 1),
        "modules_beyond_startup": len(modules - startup),
    }


def cold_start(bins: dict[str, Path], runs: int, tmp: Path) -> dict:
    """Interleaved runs of ``healthcheck check conntrack`` on both sides and a bare interpreter."""
    proc_root = fake_proc(tmp / "proc")
    argv = {
        side: [str(bins[side] / "healthcheck"), "check", "conntrack", "--proc-root", proc_root]
        for side in SIDES
    }
    bare = [str(bins["after"] / "python"), "-c", "pass"]
    for _ in range(5):  # page cache and .pyc files warm on both sides
        for side in SIDES:
            timed_run(argv[side])
        timed_run(bare)
    times: dict[str, list[float]] = {side: [] for side in (*SIDES, "python -c pass")}
    codes: dict[str, set[int]] = {side: set() for side in SIDES}
    for i in range(runs):
        order = SIDES if i % 2 == 0 else SIDES[::-1]
        for side in order:
            elapsed, code = timed_run(argv[side])
            times[side].append(elapsed)
            codes[side].add(code)
        times["python -c pass"].append(timed_run(bare)[0])
    report: dict = {"command": "healthcheck check conntrack --proc-root <10% full>", "runs": runs}
    for side, values in times.items():
        report[side] = {
            "median_ms": round(statistics.median(values) * 1000, 2),
            "p90_ms": round(percentile(values, 0.9) * 1000, 2),
        }
        if side in codes:
            report[side]["exit_codes"] = sorted(codes[side])
            python = str(bins[side] / "python")
            report[side].update(one_shot_facts(python, argv[side]))
    low, high = bootstrap_ratio(times["before"], times["after"])
    report["ratio_after_before_median"] = round(
        statistics.median(times["after"]) / statistics.median(times["before"]), 3
    )
    report["ratio_95pct_bootstrap"] = [round(low, 3), round(high, 3)]
    return report


# ----------------------------------------------------------------------------------- agent

# Checkers whose options take a state directory: each agent gets its own, so the two never share
# a repair record, a token or a counter (and neither touches the machine's).
STATEFUL = {"conntrack", "kubelet", "kube-proxy", "docker", "cri", "maintenance-events"}


def agent_config(path: Path, state_dir: Path, cri_socket: str | None) -> list[str]:
    """config/agent.yaml on free ports, with a private state directory; the check names."""
    config = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
    config["metrics"] = "127.0.0.1:0"
    config["server"] = "127.0.0.1:0"
    for check in config["checks"]:
        options = check.setdefault("options", {})
        if check.get("checker") in STATEFUL:
            options["state_dir"] = str(state_dir)
        if check.get("checker") == "cri" and cri_socket:
            options["cri_socket_path"] = f"unix://{cri_socket}"
    path.write_text(yaml.safe_dump(config))
    return [c.get("name", c.get("checker")) for c in config["checks"]]


def spawn(argv: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_bench,  # only prctl between fork and exec
        )  # fmt: skip


def side_by_side(bins: dict[str, Path], minutes: float, tmp: Path, started: list) -> dict:
    """Both agents against one real kube-apiserver for ``minutes``; their RSS and CPU."""
    from envtest import Envtest

    env = Envtest(tmp / "envtest").start()
    runtime, cri_socket = start_runtime(tmp)
    try:
        env.kubectl("apply", "-f", str(REPO / "packaging" / "kubernetes" / "rbac.yaml"))
        world = standin_systemctl(tmp / "standin")
        kubeconfig = str(env.kubeconfig("agent"))
        argvs, names = {}, []
        for side in SIDES:
            node = f"redesign-{side}"
            env.create_node(node)
            config = tmp / f"{side}.yaml"
            names = agent_config(config, tmp / f"state-{side}", cri_socket)
            argvs[side] = [str(bins[side] / "healthcheck"), "agent", "--config", str(config),
                           "--kubeconfig", kubeconfig, "--node-name", node]  # fmt: skip
        since = time.time()
        procs = {side: spawn(argvs[side], tmp / f"agent-{side}.log", world) for side in SIDES}
        started.extend(procs.values())
        samplers = {side: TreeSampler(proc.pid, 1.0) for side, proc in procs.items()}
        time.sleep(minutes * 60)
        report: dict = {
            "minutes": minutes,
            "checks": names,
            "cri_against": "a real containerd" if cri_socket else runtime,
        }
        for side, proc in procs.items():
            samplers[side].stop()
            if proc.poll() is not None:
                raise SystemExit(f"the {side} agent exited with {proc.returncode}: {tmp}")
            cpu, hwm = proc_usage(proc.pid)
            rss = samplers[side].samples
            report[side] = {
                "peak_rss_mib": round(max(rss) / 1024, 1),
                "mean_rss_mib": round(statistics.mean(rss) / 1024, 1),
                "daemon_vmhwm_mib": round(hwm / 1024, 1),
                "samples": len(rss),
                "cpu_seconds_with_children": round(cpu, 2),
                "cpu_share_of_one_core_pct": round(100 * cpu / (minutes * 60), 3),
            }
        for proc in procs.values():
            stop_process(proc)
        for side in SIDES:
            node = f"redesign-{side}"
            conditions = env.node_conditions(node)
            report[side]["conditions"] = {t: c["status"] for t, c in sorted(conditions.items())}
            report[side]["api_requests_on_its_node"] = sum(
                1 for e in env.audit(user="agent", since=since)
                if f"/nodes/{node}" in e.get("requestURI", "")
            )  # fmt: skip
        for key in (
            "peak_rss_mib",
            "mean_rss_mib",
            "daemon_vmhwm_mib",
            "cpu_seconds_with_children",
        ):
            report[f"ratio_{key}"] = round(report["after"][key] / report["before"][key], 3)
        return report
    finally:
        if cri_socket:
            import real_containerd

            real_containerd.stop(runtime)
        env.stop()


# ------------------------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the before tree's venv bin")
    parser.add_argument("--after", type=Path, required=True, help="the after tree's venv bin")
    parser.add_argument("--runs", type=int, default=200, help="cold-start runs of each side")
    parser.add_argument("--agent-minutes", type=float, default=15.0)
    parser.add_argument("--skip-agent", action="store_true")
    parser.add_argument("--skip-coldstart", action="store_true")
    args = parser.parse_args()
    bins = {"before": args.before.resolve(), "after": args.after.resolve()}
    for side, path in bins.items():
        if not (path / "healthcheck").is_file():
            print(f"--{side}: no healthcheck script in {path}", file=sys.stderr)
            return 2
    report: dict = {
        "machine": f"{os.cpu_count()} cores, shared with other jobs (figures are noisy)",
        "before": str(bins["before"]),
        "after": str(bins["after"]),
    }
    started: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory(prefix="redesign-bench-") as tmp:
            if not args.skip_coldstart:
                report["cold_start"] = cold_start(bins, args.runs, Path(tmp))
                print(json.dumps({"cold_start": report["cold_start"]}, indent=2), flush=True)
            if not args.skip_agent:
                report["agent"] = side_by_side(bins, args.agent_minutes, Path(tmp), started)
                print(json.dumps({"agent": report["agent"]}, indent=2), flush=True)
    finally:
        for proc in started:
            stop_process(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
