"""What the agent sends and logs while the API server refuses it (issue 11, invariants 5 and 9).

Runs the installed ``healthcheck agent`` against the API server double (tests/k8s_double.py, a
loopback HTTP server standing in for the API server) with one NPD-style plugin that reports a
problem, and prints, per scenario, the requests the double received, the agent's stderr lines,
the wall time and the exit code:

- ``once-503``: ``--once`` while every request gets 503 (the server is up but failing);
- ``once-down``: ``--once`` while nothing listens (connection refused; only log lines count);
- ``sigterm-429``: a running agent gets 429 with ``Retry-After: 60`` for everything after its
  first PATCH, a condition changes, then SIGTERM: requests and lines after the signal;
- ``sigterm-503``: the same with plain 503s (the agent's own backoff, no Retry-After).

    .venv/bin/python bench/agent_backoff.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from k8s_double import ApiServerDouble, write_kubeconfig

BIN = Path(sys.executable).parent
NODE = "node-1"
PLUGIN = """#!/bin/sh
if [ -e "{flag}" ]; then echo "flag is set"; exit 1; fi
echo fine
"""


def setup(directory: Path, url: str) -> tuple[list[str], Path]:
    flag = directory / "flag"
    script = directory / "flip.sh"
    script.write_text(PLUGIN.format(flag=flag))
    script.chmod(0o755)
    config = directory / "agent.yaml"
    config.write_text(
        'metrics: ""\nserver: ""\nchecks:\n'
        f"  - path: {script}\n    name: flip\n    type: permanent\n    condition: FlipProblem\n"
        "    reason: FlipBad\n    healthyReason: FlipOK\n    healthyMessage: flip is fine\n"
        "    interval: 200ms\n"
    )
    kubeconfig = write_kubeconfig(directory / "kubeconfig", url)
    argv = [
        str(BIN / "healthcheck"),
        "agent",
        "--config",
        str(config),
        "--kubeconfig",
        kubeconfig,
        "--node-name",
        NODE,
    ]
    return argv, flag


def once(double: ApiServerDouble, directory: Path, down: bool) -> dict:
    argv, flag = setup(directory, double.url)
    flag.touch()
    if down:
        double.go_down()
    else:
        double.inject(*[(503,)] * 10_000)
    before = len(double.requests)
    started = time.monotonic()
    proc = subprocess.run([*argv, "--once"], capture_output=True, text=True, timeout=120)
    return {
        "requests": len(double.requests) - before,
        "log_lines": len(proc.stderr.splitlines()),
        "seconds": round(time.monotonic() - started, 1),
        "exit": proc.returncode,
        "last_line": proc.stderr.splitlines()[-1] if proc.stderr else "",
    }


def sigterm(double: ApiServerDouble, directory: Path, fault: tuple) -> dict:
    argv, flag = setup(directory, double.url)
    log_path = directory / "stderr"
    with open(log_path, "w") as log:
        agent = subprocess.Popen(argv, stderr=log, stdout=subprocess.DEVNULL)
    try:
        if not double.wait_for(lambda d: d.nodes[NODE]["status"]["conditions"], 20):
            raise SystemExit("the agent never sent its first PATCH")
        double.inject(*[fault] * 10_000)
        flag.touch()
        time.sleep(2.0)  # the change is batched, sent, refused; the agent announces its retry
        lines_before = len(log_path.read_text().splitlines())
        requests_before = len(double.requests)
        agent.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = agent.wait(30)
        elapsed = time.monotonic() - started
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    lines = log_path.read_text().splitlines()
    return {
        "requests_after_signal": len(double.requests) - requests_before,
        "log_lines_after_signal": len(lines) - lines_before,
        "seconds_to_exit": round(elapsed, 1),
        "exit": code,
        "last_lines": lines[lines_before:][-2:],
    }


def main() -> None:
    print(f"machine: {os.cpu_count()} cores, shared with other jobs; figures are one run each")
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in (
            ("once-503", lambda d, p: once(d, p, down=False)),
            ("once-down", lambda d, p: once(d, p, down=True)),
            ("sigterm-429", lambda d, p: sigterm(d, p, (429, 60))),
            ("sigterm-503", lambda d, p: sigterm(d, p, (503,))),
        ):
            directory = Path(tmp) / name
            directory.mkdir()
            double = ApiServerDouble()
            double.add_node(NODE)
            try:
                print(name, run(double, directory), flush=True)
            finally:
                double.close()


if __name__ == "__main__":
    main()
