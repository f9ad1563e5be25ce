"""``healthcheck host-event-log`` with thousands of active events: lines written and time per run.

Runs the command repeatedly against the loopback metadata emulator serving ``--events`` active
Alibaba events, for this checkout and for a baseline revision (``--baseline``, default ``main``,
exported with ``git archive`` and put first on PYTHONPATH), runs of the two interleaved. Prints,
per run, the lines each appended and its wall time (median over ``--rounds`` rounds).

    .venv/bin/python bench/host_event_log.py [--events 2500] [--runs 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from metadata_emulator import MetadataEmulator  # noqa: E402


def export(revision: str, target: str) -> None:
    archive = subprocess.run(
        ["git", "-C", REPO, "archive", revision, "healthcheck"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)


def one_series(url: str, runs: int, source: str, work: str) -> list[tuple[int, float]]:
    """``runs`` consecutive runs on a fresh log and state: (lines appended, seconds) each."""
    env = dict(os.environ, PYTHONPATH=source)
    log = os.path.join(work, "host_event.log")
    argv = [sys.executable, "-m", "healthcheck._cli", "host-event-log", "--provider", "alibaba"]
    argv += ["--endpoint", url, "--state-dir", os.path.join(work, "state"), "--log-path", log]
    series = []
    for _ in range(runs):
        before = _lines(log)
        started = time.perf_counter()
        # cwd: python -m puts it first on sys.path, before PYTHONPATH and site-packages.
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"host-event-log failed: {proc.stderr.strip()}")
        series.append((_lines(log) - before, elapsed))
    return series


def _lines(path: str) -> int:
    try:
        with open(path, "rb") as fh:
            return fh.read().count(b"\n")
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2500)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default="main")
    args = parser.parse_args()
    events = [
        {
            "event-id": f"e-{n}",
            "event-type": "SystemMaintenance.Reboot",
            "event-status": "Scheduled",
            "not-before": "2026-11-23T02:00:00Z",
        }
        for n in range(args.events)
    ]
    results: dict[str, list[list[tuple[int, float]]]] = {args.baseline: [], "this checkout": []}
    with tempfile.TemporaryDirectory() as tmp, MetadataEmulator("alibaba", events) as emu:
        baseline_src = os.path.join(tmp, "baseline")
        os.mkdir(baseline_src)
        export(args.baseline, baseline_src)
        for round_no in range(args.rounds):
            for name, source in ((args.baseline, baseline_src), ("this checkout", REPO)):
                work = os.path.join(tmp, f"{name.replace(' ', '-')}-{round_no}")
                os.mkdir(work)
                results[name].append(one_series(emu.url, args.runs, source, work))
    print(f"{args.events} active events, {args.runs} runs on one log, median of {args.rounds}")
    print(f"{'':<16}" + "".join(f"{'run ' + str(i + 1):>18}" for i in range(args.runs)))
    for name, rounds in results.items():
        cells = []
        for i in range(args.runs):
            lines = statistics.median(r[i][0] for r in rounds)
            seconds = statistics.median(r[i][1] for r in rounds)
            cells.append(f"{lines:>7.0f} l {seconds * 1000:>6.0f} ms")
        print(f"{name:<16}" + "".join(f"{c:>18}" for c in cells))


if __name__ == "__main__":
    main()
