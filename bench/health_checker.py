"""Figures for the drop-in health-checker (issue 3), printed, never asserted.

1. One-shot ``health-checker --component=kubelet`` against a healthy kubelet stand-in (a real
   HTTP server on loopback started here): median wall time as a ratio to ``python -c pass``,
   runs interleaved in one process.
2. The log-pattern check over a journal of 1,000,000 entries (written by systemd-journal-remote)
   in which kubelet.service has 10,000 entries inside the window: our
   ``health-checker --log-pattern`` against NPD's ``journalctl --unit --since | grep -ci``
   pipeline, run here as two argv processes joined by a pipe (no shell). Also the floor of any
   Python check (interpreter start plus importing re2 and systemd-python's reader) and the
   count done in-process, warm: what the agent pays per run.

NPD's Go health-checker is not installed on this machine, so no ratio against it is printed.

    .venv/bin/python bench/health_checker.py [--runs 40] [--entries 1000000] [--skip-journal]
"""

from __future__ import annotations

import argparse
import http.server
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from coldstart import measure  # noqa: E402

STANDIN = """#!/bin/sh
# systemctl stand-in: the unit left the inactive state {ago} seconds ago
now=$(cut -d' ' -f1 /proc/uptime | tr -d .)
echo "InactiveExitTimestampMonotonic=$(( (now - {ago}00) * 10000 ))"
"""


class _Healthz(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


def bench_one_shot(runs: int) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.environ["HOST_ADDRESS"] = "127.0.0.1"
    os.environ["KUBELET_PORT"] = str(server.server_address[1])
    script = shutil.which("health-checker", path=os.path.dirname(sys.executable))
    subject = [sys.executable, script, "--component=kubelet"]
    r = measure([sys.executable, "-c", "pass"], subject, runs)
    server.shutdown()
    print("== one-shot health-checker --component=kubelet (healthy, loopback server)")
    print(f"runs:            {runs} each, interleaved")
    print(f"python -c pass:  {r['baseline_ms']:.1f} ms median")
    print(f"health-checker:  {r['subject_ms']:.1f} ms median, exit codes {r['exit_codes']}")
    print(f"ratio:           {r['ratio']:.2f}x  (target <= 3.0x)")
    print(f"peak RSS:        {r['subject_rss_mib']:.1f} MiB")
    print("NPD's Go health-checker: not available on this machine, no figure")


def _records(entries: int, in_window: int, now: float, window: float):
    from journalfile import Record

    # Entries are evenly spaced over ten windows; kubelet writes every n-th entry so that
    # in_window of its entries fall inside the last window. One kubelet entry in 10 matches.
    span = window * 10
    step = span / entries
    kubelet_every = max(1, entries // (10 * in_window))
    kubelet = 0
    for i in range(entries):
        t = now - span + (i + 1) * step
        if i % kubelet_every == 0:
            kubelet += 1
            msg = "PLEG is not healthy: pleg was last seen active" if kubelet % 10 == 0 else "ok"
            yield Record(t, f"{msg} {i}", identifier="kubelet", unit="kubelet.service")
        else:
            yield Record(
                t, f"other unit message {i}", identifier="app", unit=f"app{i % 50}.service"
            )


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_journal(entries: int, repeats: int) -> None:
    from journalfile import write_journal

    from healthcheck_plugins.component.checker import count_pattern_matches

    in_window = entries // 100
    window = 1000.0
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        path = write_journal(tmp, _records(entries, in_window, now, window), name="big.journal")
        print(f"\n== log pattern over {entries:,} entries ({in_window:,} of kubelet in the window)")
        print(f"journal written in {time.perf_counter() - started:.1f} s: {path}")
        systemctl = os.path.join(tmp, "systemctl")
        with open(systemctl, "w") as fh:
            fh.write(STANDIN.format(ago=int(window)))
        os.chmod(systemctl, 0o700)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - window))
        script = shutil.which("health-checker", path=os.path.dirname(sys.executable))
        ours = [
            sys.executable,
            script,
            "--enable-repair=false",
            f"--systemctl={systemctl}",
            f"--journal-directory={tmp}",
            "--log-pattern=1000000:pleg is not healthy",
            "--health-check-timeout=1s",
        ]
        journalctl = ["journalctl", "--file", path, "--unit", "kubelet", "--since", since]
        grep = ["grep", "-ci", "pleg is not healthy"]

        def pipeline(pattern: str = "pleg is not healthy") -> str:
            first = subprocess.Popen(journalctl, stdout=subprocess.PIPE)
            second = subprocess.Popen(
                [*grep[:2], pattern], stdin=first.stdout, stdout=subprocess.PIPE
            )
            first.stdout.close()
            out = second.communicate()[0]
            first.wait()
            return out.decode().strip()

        def run_ours(backend: str, *more: str) -> None:
            subprocess.run(
                [*ours, f"--journal-backend={backend}", *more],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                env={**os.environ, "KUBELET_PORT": "1"},
            )

        print(f"pipeline count:  {pipeline()} (journalctl --unit --since | grep -ci)")
        extra = ["deadline exceeded", "failed to reserve"]
        total = count_pattern_matches("kubelet", ["."], now - window, directory=tmp)["."]
        print(f"kubelet entries in the window: {total}")
        more = [f"--log-pattern=1000000:{p}" for p in extra]
        times = {
            "pipeline": [],
            "native": [],
            "journalctl": [],
            "pipeline x3": [],
            "native, 3 pat.": [],
        }
        floor = ["python start + re2/systemd"]
        times[floor[0]] = []
        for _ in range(repeats):
            times[floor[0]].append(
                _timed(
                    lambda: subprocess.run(
                        [sys.executable, "-c", "import re2; from systemd import _reader"],
                        check=True,
                    )
                )
            )
            times["pipeline"].append(_timed(pipeline))
            times["native"].append(_timed(lambda: run_ours("native")))
            times["journalctl"].append(_timed(lambda: run_ours("journalctl")))
            # NPD runs one pipeline per pattern; we read the window once for all of them.
            times["pipeline x3"].append(
                _timed(lambda: [pipeline(p) for p in ["pleg is not healthy", *extra]])
            )
            times["native, 3 pat."].append(_timed(lambda: run_ours("native", *more)))
        base = statistics.median(times["pipeline"])
        for name, values in times.items():
            median = statistics.median(values)
            print(f"{name:<16} {median:.3f} s median of {repeats}  ({median / base:.2f}x pipeline)")
        print(f"  ({floor[0]}: the floor of any Python check, before reading one entry)")
        warm = []
        for _ in range(repeats):
            started = time.perf_counter()
            counts = count_pattern_matches(
                "kubelet", ["pleg is not healthy"], now - window, directory=tmp
            )
            warm.append(time.perf_counter() - started)
        print(f"our count:       {counts['pleg is not healthy']} (in-process, native backend)")
        median = statistics.median(warm)
        print(
            f"in-process       {median:.3f} s median of {repeats}  ({median / base:.2f}x pipeline;"
            " the agent's cost, no start-up)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-journal", action="store_true")
    args = parser.parse_args()
    bench_one_shot(args.runs)
    if not args.skip_journal:
        bench_journal(args.entries, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
