"""log-counter on large real journals, against `journalctl -t ID --since ... -o cat | grep -cE`.

Builds (once, cached under /tmp/healthcheck-bench) journals of 1,000,000 and 4,000,000 entries
spread over 48 hours from 50 identifiers, written by systemd-journal-remote. The counted
identifier logs 10,000 entries in the last 20 minutes of the journal (a pattern matches 1 in 50 of
them) and a trickle before that. The newest entry is a minute older than the build, and the
lookback passed to both sides is computed from the journal's own newest timestamp, so the window
is the journal's last 20 minutes whenever the bench runs.

Prints, per journal: the median wall time of our `log-counter`, of the journalctl | grep
pipeline (two argv processes joined by a pipe, no shell), their ratio (target <= 1.0x), the
counts both found (they must agree), and the 4M/1M ratio of our time (target <= 1.3x).

Also, interleaved with those runs, the floor any Python log-counter stands on: `python -c pass`
(the interpreter's start) and `python -c "import re2; from systemd import _reader"` (start plus
the two C libraries an RE2 count over libsystemd must load), each as a share of the pipeline;
and the count done in-process, warm, which is what the agent pays per run (no start-up).

    .venv/bin/python bench/log_counter.py [--runs 7] [--sizes 1000000 4000000] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from journalfile import Record, write_journal  # noqa: E402

CACHE = "/tmp/healthcheck-bench"
SPAN = 48 * 3600.0
WINDOW = 20 * 60.0
COUNTED = "kubelet"
IN_WINDOW = 10_000
BEFORE_WINDOW = 2_000
IDENTIFIERS = [COUNTED] + [f"svc{i:02d}" for i in range(49)]
# Written in the syntax RE2 and POSIX ERE share, so that grep -E counts the same lines.
PATTERN = (
    r"E[0-9]{4} [0-9:.]+ +[0-9]+ [a-z_]+\.go:[0-9]+\] failed to sync pod [a-z0-9]+: "
    r"connection refused"
)
MATCH_EVERY = 50


def _counted_message(i: int) -> str:
    if i % MATCH_EVERY == 0:
        return (
            f"E1123 10:00:00.{i:06d} 1234 pod_workers.go:1298] failed to sync pod p{i}: "
            "connection refused"
        )
    return f"I1123 10:00:00.{i:06d} 1234 kubelet.go:{i % 3000}] SyncLoop (PLEG): event for pod p{i}"


def _records(total: int, end: float):
    """``total`` records in time order over SPAN seconds ending at ``end``."""
    start = end - SPAN
    window_start = end - WINDOW
    background = total - IN_WINDOW - BEFORE_WINDOW
    step_bg = SPAN / background
    counted_before = [
        start + (i + 0.5) * (SPAN - WINDOW) / BEFORE_WINDOW for i in range(BEFORE_WINDOW)
    ]
    counted_in = [window_start + (i + 0.5) * WINDOW / IN_WINDOW for i in range(IN_WINDOW)]
    counted = counted_before + counted_in
    ci = 0
    for n in range(background):
        t = start + n * step_bg
        while ci < len(counted) and counted[ci] <= t:
            yield Record(counted[ci], _counted_message(ci), COUNTED)
            ci += 1
        ident = IDENTIFIERS[1 + n % 49]
        yield Record(t, f"{ident} worker {n % 97}: request {n} handled in {n % 1000}ms", ident)
    while ci < len(counted):
        yield Record(counted[ci], _counted_message(ci), COUNTED)
        ci += 1


def build(total: int, rebuild: bool) -> tuple[str, float]:
    """The cached journal directory for ``total`` entries and its newest timestamp."""
    directory = os.path.join(CACHE, f"journal-{total}")
    meta_path = os.path.join(CACHE, f"journal-{total}.json")
    if not rebuild and os.path.exists(meta_path):
        with open(meta_path) as fh:
            meta = json.load(fh)
        return directory, meta["newest"]
    shutil.rmtree(directory, ignore_errors=True)
    end = time.time() - 60
    started = time.perf_counter()
    write_journal(directory, _records(total, end), name="system.journal", boot_time=end - SPAN - 60)
    size = sum(e.stat().st_size for e in os.scandir(directory))
    print(
        f"built {total:,} entries in {time.perf_counter() - started:.1f} s "
        f"({size / 2**20:.0f} MiB, {len(os.listdir(directory))} files)",
        file=sys.stderr,
    )
    with open(meta_path, "w") as fh:
        json.dump({"newest": end}, fh)
    return directory, end


def run_ours(log_counter: str, directory: str, lookback: float) -> tuple[float, int]:
    argv = [
        log_counter,
        f"--journald-source={COUNTED}",
        f"--log-path={directory}",
        f"--lookback={lookback:.3f}s",
        f"--pattern={PATTERN}",
        "--count=1",
    ]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"log-counter failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    found = int(proc.stdout.split()[1]) if proc.returncode == 1 else 0
    return elapsed, found


def run_pipeline(directory: str, since: float) -> tuple[float, int]:
    started = time.perf_counter()
    journalctl = subprocess.Popen(
        ["journalctl", "-D", directory, "-t", COUNTED, f"--since=@{since:.6f}", "-o", "cat"],
        stdout=subprocess.PIPE,
    )
    # grep -E has no end-of-line anchoring of its own; log-counter's match must end the line.
    grep = subprocess.Popen(
        ["grep", "-cE", PATTERN + "$"], stdin=journalctl.stdout, stdout=subprocess.PIPE
    )
    assert journalctl.stdout is not None
    journalctl.stdout.close()
    out, _ = grep.communicate()
    journalctl.wait()
    return time.perf_counter() - started, int(out.decode().strip() or 0)


FLOOR_IMPORTS = "import re2; from systemd import _reader"


def run_python(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def in_process_ms(directory: str, since: float, runs: int) -> tuple[float, int]:
    """Median milliseconds of the count inside this process (the agent's path), and the count."""
    import types

    from healthcheck_plugins.log_counter.checker import count_matches

    times, found = [], 0
    for _ in range(runs):
        now = time.time()
        options = types.SimpleNamespace(
            journald_source=COUNTED,
            log_path=directory,
            lookback=f"{now - since:.3f}s",
            delay="",
            pattern=PATTERN,
            revert_pattern="",
            count=1,
        )
        started = time.perf_counter()
        found = count_matches(options, now, uptime=10 * SPAN)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    log_counter = os.path.join(os.path.dirname(sys.executable), "log-counter")
    os.makedirs(CACHE, exist_ok=True)
    journals = {total: build(total, args.rebuild) for total in args.sizes}
    times = {total: {"ours": [], "pipeline": []} for total in args.sizes}
    counts = {total: set() for total in args.sizes}
    bare, floor = [], []
    for round_ in range(2 + args.runs):
        # Every size and every side in each round, so machine noise hits them all alike; the
        # first two rounds only warm the page cache.
        for total, (directory, newest) in journals.items():
            since = newest - WINDOW
            t, n = run_ours(log_counter, directory, time.time() - since)
            if round_ >= 2:
                times[total]["ours"].append(t)
                counts[total].add(("ours", n))
            t, n = run_pipeline(directory, since)
            if round_ >= 2:
                times[total]["pipeline"].append(t)
                counts[total].add(("pipeline", n))
        if round_ >= 2:
            bare.append(run_python("pass"))
            floor.append(run_python(FLOOR_IMPORTS))
    bare_t, floor_t = statistics.median(bare), statistics.median(floor)
    ours_by_size = {}
    for total, (directory, newest) in journals.items():
        ours_t = statistics.median(times[total]["ours"])
        theirs_t = statistics.median(times[total]["pipeline"])
        warm_ms, warm_n = in_process_ms(directory, newest - WINDOW, args.runs)
        counts[total].add(("in-process", warm_n))
        ours_by_size[total] = ours_t
        print(f"journal:            {total:,} entries over 48 h, 50 identifiers ({directory})")
        print(f"log-counter:        {ours_t * 1000:.1f} ms median of {args.runs}")
        print(f"journalctl | grep:  {theirs_t * 1000:.1f} ms median of {args.runs}")
        print(f"ratio:              {ours_t / theirs_t:.2f}x  (target <= 1.0x)")
        print(
            f"floor, python start:        {bare_t * 1000:.1f} ms "
            f"({bare_t / theirs_t:.2f}x the pipeline)"
        )
        print(
            f"floor, start + re2/systemd: {floor_t * 1000:.1f} ms "
            f"({floor_t / theirs_t:.2f}x the pipeline, before reading one entry)"
        )
        print(
            f"in-process count (agent):   {warm_ms:.1f} ms "
            f"({warm_ms / 1000 / theirs_t:.2f}x the pipeline, no start-up)"
        )
        print(f"counts:             {sorted(counts[total])}")
        agree = len({n for _, n in counts[total]}) == 1
        print(f"counts agree:       {agree}")
        print()
    if len(args.sizes) >= 2:
        small, large = args.sizes[0], args.sizes[-1]
        ratio = ours_by_size[large] / ours_by_size[small]
        print(f"log-counter {large:,} / {small:,}: {ratio:.2f}x  (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
