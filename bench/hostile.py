"""The agent under hostile load (issue 11's figures), against the API double.

Phase "listeners": ``healthcheck agent`` with one cheap check, both local listeners on
(``/metrics`` and ``/healthz``). After ``--settle`` seconds at rest, ``--connections`` sockets
are opened to EACH listener and held idle (connected, sending nothing) for ``--hold`` seconds.
Prints the agent's RSS at rest, its peak RSS (VmHWM) under the load, the most threads it had,
how many ``/healthz`` probes (one every 0.25 s, 0.5 s timeout) it answered meanwhile, and how
long it took to answer again once the idle sockets were closed.

Phase "patch": the agent runs hostile checkers (in-process plugins, installed for the agent
only through a ``*.dist-info`` on PYTHONPATH, and NPD-style programs) whose messages are 4 MiB
of text chosen to grow on the way: astral characters (4 UTF-8 bytes, 12 bytes as JSON
``\\uXXXX`` pairs), quotes and backslashes (2 bytes each in JSON), control characters, and a
Result mutated after construction. Prints the largest status PATCH body the API double
received, the largest Event body, and the agent's peak RSS.

The machine is shared with other work: RSS figures are stable, times are not.

    .venv/bin/python bench/hostile.py --connections 3000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from k8s_double import ApiServerDouble, write_kubeconfig

BIN = Path(sys.executable).parent
NODE = "bench-node"


def status_of(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (KiB) and Threads of a live process."""
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(value.split()[0])
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port: int, path: str, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            return sock.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


def start_agent(tmp: Path, config: dict, env=None):
    double = ApiServerDouble()
    double.add_node(NODE)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", double.url)
    path = tmp / "agent.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    argv = [str(BIN / "healthcheck"), "agent", "--config", str(path)]
    argv += ["--kubeconfig", kubeconfig, "--node-name", NODE]
    log = open(tmp / "agent.log", "wb")  # noqa: SIM115 - closed by stop_agent
    agent = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL, env=env)
    return double, agent, log


def stop_agent(double, agent, log) -> None:
    agent.terminate()
    try:
        agent.wait(15)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()
    log.close()
    double.close()


def run_listeners(tmp: Path, connections: int, settle: float, hold: float) -> dict:
    metrics, server = free_port(), free_port()
    config = {
        "metrics": f"127.0.0.1:{metrics}",
        "server": f"127.0.0.1:{server}",
        "checks": [{"checker": "conntrack"}],
    }
    double, agent, log = start_agent(tmp, config)
    try:
        deadline = time.monotonic() + 20
        while not get(server, "/healthz") and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(settle)
        rest = status_of(agent.pid)
        socks = []
        peak_threads = rest["Threads"]
        started = time.monotonic()
        # Non-blocking connects, all at once: the kernel completes what the listen backlog
        # holds and retries the rest while the agent accepts at its own pace.
        for port in (metrics, server):
            for _ in range(connections):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                socks.append(sock)
        opened = time.monotonic() - started
        answered_under_load = 0
        probes = 0
        end = time.monotonic() + hold
        while time.monotonic() < end:
            peak_threads = max(peak_threads, status_of(agent.pid)["Threads"])
            probes += 1
            answered_under_load += get(server, "/healthz", timeout=0.5)
            time.sleep(0.25)
        loaded = status_of(agent.pid)
        for sock in socks:
            sock.close()
        closed_at = time.monotonic()
        while not get(server, "/healthz", timeout=1.0) and time.monotonic() - closed_at < 30:
            time.sleep(0.05)
        recovered = time.monotonic() - closed_at
        metrics_ok = get(metrics, "/metrics")
        after = status_of(agent.pid)
    finally:
        stop_agent(double, agent, log)
    return {
        "connections_per_listener": connections,
        "seconds_to_start_them": round(opened, 2),
        "held_s": hold,
        "rss_at_rest_mib": round(rest["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(loaded["VmHWM"] / 1024, 1),
        "rss_after_mib": round(after["VmRSS"] / 1024, 1),
        "threads_at_rest": rest["Threads"],
        "peak_threads_seen": peak_threads,
        "healthz_answered_under_load": f"{answered_under_load}/{probes}",
        "healthz_again_after_close_s": round(recovered, 2),
        "metrics_answers_after": metrics_ok,
    }


HOSTILE_PLUGIN = """
import sys
from healthcheck import Checker, Condition, Result, Status, hookimpl

print("hostile plugin says hello on stdout at import")
SIZE = 4 << 20


def mutated(ctx):
    result = Result.problem("x" * SIZE)
    result.status = 1  # a plain int, set after construction
    return result


def exits(ctx):
    sys.exit(3)


CHECKS = {
    "short": lambda ctx: Result.problem("a short message"),
    "astral": lambda ctx: Result.problem("\\U0001F4A9" * (SIZE // 4)),
    "quotes": lambda ctx: Result.problem('"\\\\' * (SIZE // 2)),
    "controls": lambda ctx: Result.problem("\\x1b[31m\\n\\u2028" * (SIZE // 8)),
    "mutated": mutated,
    "exits": exits,
}


@hookimpl
def healthcheck_checkers():
    return [
        Checker(
            f"hostile-{name}",
            description="\\n".join(["a hostile description"] * 1000),
            check=check,
            condition=Condition(f"Hostile{name.title()}", "Bad", "Fine", "fine"),
            interval=2.0,
        )
        for name, check in CHECKS.items()
    ]
"""

HOSTILE_PROGRAM = """#!/bin/sh
head -c 4194304 /dev/zero | tr '\\000' '"'
exit 1
"""


ALL_HOSTILE = ["astral", "quotes", "controls", "mutated", "exits"]


def run_patch(tmp: Path, duration: float, names=ALL_HOSTILE, programs: bool = True) -> dict:
    site = tmp / "site"
    site.mkdir()
    (site / "hostile_plugin.py").write_text(HOSTILE_PLUGIN)
    dist = site / "hostile_bench-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-bench\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[healthcheck]\nhostile = hostile_plugin\n")
    program = tmp / "hostile.sh"
    program.write_text(HOSTILE_PROGRAM)
    program.chmod(0o755)
    checks = [{"checker": f"hostile-{n}"} for n in names]
    if programs:
        checks += _program_checks(program)
    config = {"metrics": "", "server": "", "checks": checks}
    env = dict(os.environ, PYTHONPATH=str(site))
    double, agent, log = start_agent(tmp, config, env)
    try:
        time.sleep(duration)
        peak = status_of(agent.pid)["VmHWM"]
        alive = agent.poll() is None
    finally:
        stop_agent(double, agent, log)
    patches = [r for r in double.requests if r.method == "PATCH" and r.path.endswith("/status")]
    events = [r for r in double.requests if "/events" in r.path]
    conditions = double.conditions(NODE)
    return {
        "checks": [c.get("checker") or c.get("name") or "program" for c in checks],
        "duration_s": duration,
        "agent_alive_throughout": alive,
        "status_patches": len(patches),
        "largest_status_patch_bytes": max((len(r.body) for r in patches), default=0),
        "conditions_in_it": len(conditions),
        "largest_condition_message_bytes": max(
            (len(c.get("message", "").encode()) for c in conditions.values()), default=0
        ),
        "events_sent": len(events),
        "largest_event_body_bytes": max((len(r.body) for r in events), default=0),
        "agent_peak_rss_mib": round(peak / 1024, 1),
        "mutated_and_exits_say": {
            t: conditions[t]["message"]
            for t in ("HostileMutated", "HostileExits")
            if t in conditions
        },
    }


def _program_checks(program: Path) -> list[dict]:
    return [
        {
            "path": str(program),
            "type": "permanent",
            "condition": "HostileProgram",
            "reason": "Bad",
            "healthyReason": "Fine",
            "maxOutputLength": 65536,
            "interval": "2s",
        },
        {"path": str(program), "name": "hostile-temp", "type": "temporary", "reason": "Bad"},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=3000)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--hold", type=float, default=30.0)
    parser.add_argument("--patch-duration", type=float, default=12.0)
    parser.add_argument(
        "--phase", choices=("all", "listeners", "patch", "patch-one"), default="all"
    )
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with tempfile.TemporaryDirectory() as tmp:
        if args.phase in ("all", "listeners"):
            result = run_listeners(Path(tmp), args.connections, args.settle, args.hold)
            print(json.dumps({"listeners": result}, indent=2), flush=True)
        if args.phase in ("all", "patch", "patch-one"):
            # Every hostile checker and program at once (the largest PATCH), then one plugin
            # with a 4 MiB message against the same plugin with a short one (its own RSS).
            runs = [
                ("all", ALL_HOSTILE, True),
                ("one-4MiB", ["astral"], False),
                ("one-short", ["short"], False),
            ]
            for label, names, programs in runs[1:] if args.phase == "patch-one" else runs:
                run_dir = Path(tmp) / f"patch-{label}"
                run_dir.mkdir()
                result = run_patch(run_dir, args.patch_duration, names, programs)
                print(json.dumps({f"patch-{label}": result}, indent=2), flush=True)


if __name__ == "__main__":
    main()
