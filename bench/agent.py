"""The agent's cost on the node and on the API server (issue 6's figures), against the API double.

Phase 1 ("rest"): ``healthcheck agent`` with every installed checker at its default interval
(the cri check against a real containerd when this machine can run one, as root),
one permanent NPD-style plugin (``/bin/true`` every 30s, so there is a condition to heartbeat)
and the default 5m heartbeat, for ``--duration`` seconds. Prints the agent's peak RSS
(VmHWM), its CPU time as a share of one core, and the API writes after the start-up burst
(the first ``--settle`` seconds), which at rest should be heartbeats only.

Phase 2 ("delay"): a permanent NPD-style plugin flips between OK and problem ``--flips`` times;
prints the delay from the plugin run that saw the change to the PATCH carrying it.

Baseline in the same process: the peak RSS and CPU share of a bare ``python -c`` that imports
the same client libraries and sleeps as long, so the ratio shows the agent's own cost.

    .venv/bin/python bench/agent.py --duration 900 --flips 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import real_containerd
from k8s_double import ApiServerDouble, write_kubeconfig

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, peak RSS KiB) of a live process."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    hwm = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, hwm


def all_checkers_config(path: Path, with_plugin: bool, cri_socket: str | None) -> list[str]:
    """The shipped config/agent.yaml (a stanza for every built-in checker), on free ports.

    With ``cri_socket`` the cri check talks to that runtime, as it would on a node.
    """
    import yaml

    config = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
    config["metrics"] = "127.0.0.1:0"
    config["server"] = "127.0.0.1:0"
    if cri_socket:
        for check in config["checks"]:
            if check.get("checker") == "cri":
                check.setdefault("options", {})["cri_socket_path"] = f"unix://{cri_socket}"
    names = [c.get("name", c.get("checker")) for c in config["checks"]]
    if with_plugin:
        # A permanent condition, so that the heartbeat is exercised even when every installed
        # checker is temporary; /bin/true at NPD's default 30s interval.
        config["checks"].append(
            {
                "path": "/bin/true",
                "type": "permanent",
                "condition": "BenchProblem",
                "reason": "BenchBad",
                "healthyReason": "BenchOK",
            }
        )
        names.append("/bin/true (permanent plugin)")
    path.write_text(yaml.safe_dump(config))
    return names


def run_rest(
    tmp: Path, duration: float, settle: float, with_plugin: bool, cri_socket: str | None
) -> dict:
    double = ApiServerDouble()
    double.add_node("bench-node")
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", double.url)
    config = tmp / "rest.yaml"
    names = all_checkers_config(config, with_plugin, cri_socket)
    argv = [str(BIN / "healthcheck"), "agent", "--config", str(config)]
    argv += ["--kubeconfig", kubeconfig, "--node-name", "bench-node"]
    started = time.monotonic()
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115 - closed after the agent exits
    agent = subprocess.Popen(argv, stderr=log)
    time.sleep(settle)
    if agent.poll() is not None:
        log.close()
        raise SystemExit(
            f"the agent exited with {agent.returncode}: "
            f"{(tmp / 'agent.log').read_text().strip()[-300:]}"
        )
    cpu_settled, hwm_settled = proc_usage(agent.pid)
    time.sleep(max(0.0, duration - settle))
    cpu, hwm = proc_usage(agent.pid)
    agent.terminate()
    agent.wait(10)
    log.close()
    writes = double.writes(since=started + settle)
    all_writes = double.writes()
    conditions = double.nodes["bench-node"]["status"].get("conditions", [])
    double.close()
    return {
        "checkers": names,
        "duration_s": duration,
        "peak_rss_mib": round(hwm / 1024, 1),
        "cpu_seconds": round(cpu, 2),
        "cpu_share_of_one_core_pct": round(100 * cpu / duration, 3),
        "peak_rss_mib_after_start": round(hwm_settled / 1024, 1),
        "cpu_seconds_start": round(cpu_settled, 2),
        "cpu_share_after_start_pct": round(
            100 * (cpu - cpu_settled) / max(1e-9, duration - settle), 3
        ),
        "api_writes_total": len(all_writes),
        "api_writes_after_settle": len(writes),
        "api_writes_after_settle_detail": [f"{r.method} {r.path}" for r in writes],
        "conditions_reported": {c["type"]: c["status"] for c in conditions},
    }


def run_baseline(duration: float) -> dict:
    code = f"import kubernetes.client, prometheus_client, yaml, time; time.sleep({duration!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(max(0.5, duration - 0.5))
    cpu, hwm = proc_usage(proc.pid)
    proc.wait()
    return {"peak_rss_mib": round(hwm / 1024, 1), "cpu_seconds": round(cpu, 2)}


FLIP = """#!/bin/sh
if [ -e "{flag}" ]; then state=bad; else state=ok; fi
echo "$(date +%s.%N) $state" >> "{log}"
if [ $state = bad ]; then echo "flag present"; exit 1; fi
echo "no flag"
"""


def run_delay(tmp: Path, flips: int, interval: str) -> dict:
    double = ApiServerDouble()
    double.add_node("bench-node")
    kubeconfig = write_kubeconfig(tmp / "kubeconfig-delay", double.url)
    flag, log = tmp / "flag", tmp / "flip.log"
    script = tmp / "flip.sh"
    script.write_text(FLIP.format(flag=flag, log=log))
    script.chmod(0o755)
    config = tmp / "delay.yaml"
    config.write_text(
        "metrics: ''\nserver: ''\nchecks:\n"
        f"  - path: {script}\n    type: permanent\n    condition: BenchProblem\n"
        f"    reason: BenchBad\n    healthyReason: BenchOK\n    interval: {interval}\n"
    )
    argv = [str(BIN / "healthcheck"), "agent", "--config", str(config)]
    argv += ["--kubeconfig", kubeconfig, "--node-name", "bench-node"]
    agent = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    want = "False"
    double.wait_for(lambda d: d.nodes["bench-node"]["status"].get("conditions"), 15)
    delays = []
    for _ in range(flips):
        toggled = time.time()
        if want == "False":
            flag.touch()
            want, state = "True", "bad"
        else:
            flag.unlink()
            want, state = "False", "ok"

        def patched(d, want=want, toggled=toggled):
            return any(
                r.path.endswith("/status")
                and r.wall > toggled
                and f'"status": "{want}"' in r.body.decode().replace('":"', '": "')
                for r in d.requests
            )

        if not double.wait_for(patched, 30):
            delays.append(None)
            continue
        seen = min(
            float(line.split()[0])
            for line in log.read_text().splitlines()
            if line.endswith(state) and float(line.split()[0]) > toggled
        )
        patch_at = min(
            r.wall
            for r in double.requests
            if r.path.endswith("/status") and r.wall > toggled and f'"{want}"' in r.body.decode()
        )
        delays.append(round(patch_at - seen, 3))
    agent.terminate()
    agent.wait(10)
    double.close()
    measured = [d for d in delays if d is not None]
    return {
        "flips": flips,
        "delays_s": delays,
        "max_delay_s": max(measured) if measured else None,
        "mean_delay_s": round(sum(measured) / len(measured), 3) if measured else None,
    }


def start_runtime(tmp: Path):
    """(containerd process, its socket), or (why not, None) where containerd cannot run."""
    why = real_containerd.why_not_available()
    if why:
        return f"no runtime ({why}): the cri check fails to connect", None
    directory = tmp / "containerd"
    directory.mkdir()
    try:
        return real_containerd.start(directory)
    except RuntimeError as exc:
        return f"no runtime ({exc})", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=900.0, help="rest phase seconds")
    parser.add_argument("--settle", type=float, default=15.0, help="start-up burst to ignore")
    parser.add_argument("--flips", type=int, default=10)
    parser.add_argument("--flip-interval", default="2s")
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument(
        "--no-plugin", action="store_true", help="rest phase without the permanent /bin/true"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        report = {}
        if args.flips:
            report["delay"] = run_delay(tmp_path, args.flips, args.flip_interval)
            print(json.dumps({"delay": report["delay"]}), flush=True)
        if not args.skip_rest:
            runtime, cri_socket = start_runtime(tmp_path)
            report["cri_against"] = "a real containerd" if cri_socket else runtime
            try:
                report["rest"] = run_rest(
                    tmp_path, args.duration, args.settle, not args.no_plugin, cri_socket
                )
            finally:
                if cri_socket:
                    real_containerd.stop(runtime)
            report["baseline_imports_only"] = run_baseline(min(args.duration, 30.0))
            base = report["baseline_imports_only"]["peak_rss_mib"]
            report["rss_ratio_vs_imports_only"] = round(report["rest"]["peak_rss_mib"] / base, 2)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
