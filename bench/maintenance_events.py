"""One-shot ``maintenance-events`` against a loopback metadata emulator, in one process.

Prints the median wall time of ``healthcheck check maintenance-events --provider alibaba
--endpoint http://127.0.0.1:PORT`` divided by the median of ``python -c pass`` (runs interleaved),
the HTTP requests per check in steady state (token cached, counted by the emulator), and for an
agent-style poll loop in one process: requests and new connections per poll.

    .venv/bin/python bench/maintenance_events.py [--runs 40] [--provider alibaba]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
sys.path.insert(0, HERE)

from coldstart import interleaved, warm_up  # noqa: E402
from metadata_emulator import MetadataEmulator  # noqa: E402

EVENTS = {
    "alibaba": [
        {
            "event-id": "e-1",
            "event-type": "SystemMaintenance.Reboot",
            "event-status": "Scheduled",
            "not-before": "2026-11-23T02:00:00Z",
        }
    ],
    "aws": [
        {
            "NotBefore": "21 Jan 2019 09:00:43 GMT",
            "Code": "system-reboot",
            "EventId": "instance-event-1",
            "State": "active",
        }
    ],
    "azure": [
        {
            "EventId": "a-1",
            "EventStatus": "Scheduled",
            "EventType": "Reboot",
            "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
        }
    ],
    "gcp": "TERMINATE_ON_HOST_MAINTENANCE",
}


def one_shot(emu: MetadataEmulator, script: str, runs: int, state_dir: str) -> dict:
    subject = [
        sys.executable,
        script,
        "check",
        "maintenance-events",
        "--provider",
        emu.provider,
        "--endpoint",
        emu.url,
        "--state-dir",
        state_dir,
    ]
    baseline = [sys.executable, "-c", "pass"]
    warm_up(baseline, subject)  # the first run also fetches and caches the token
    before = emu.requests()
    puts_before = emu.requests("PUT")
    base_t, subj_t, codes = interleaved(baseline, subject, runs)
    return {
        "baseline_ms": statistics.median(base_t) * 1000,
        "subject_ms": statistics.median(subj_t) * 1000,
        "ratio": statistics.median(subj_t) / statistics.median(base_t),
        "requests_per_check": (emu.requests() - before) / runs,
        "token_requests": emu.requests("PUT") - puts_before,
        "exit_codes": sorted(codes),
    }


def poll_loop(emu: MetadataEmulator, polls: int, state_dir: str) -> dict:
    from healthcheck_plugins.maintenance_events.metadata import fetch

    before = emu.requests()
    start = time.perf_counter()
    for _ in range(polls):
        reading = fetch.read_events(emu.provider, emu.url, 2.0, state_dir)
        assert reading.ok, reading.error
    elapsed = time.perf_counter() - start
    conns = [c for (_, port), c in fetch._idle.items() if emu.url.endswith(f":{port}")]
    return {
        "requests_per_poll": (emu.requests() - before) / polls,
        "connections": sum(c.connects for c in conns),
        "poll_ms": elapsed / polls * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--polls", type=int, default=500)
    parser.add_argument("--provider", default="alibaba", choices=sorted(EVENTS))
    args = parser.parse_args()
    script = shutil.which("healthcheck", path=os.path.dirname(sys.executable))
    if script is None:
        print("healthcheck is not installed next to this interpreter", file=sys.stderr)
        return 2
    with MetadataEmulator(args.provider, EVENTS[args.provider]) as emu:
        emu.require_token = args.provider in ("alibaba", "aws")
        with tempfile.TemporaryDirectory() as state_dir:
            r = one_shot(emu, script, args.runs, state_dir)
            p = poll_loop(emu, args.polls, state_dir)
    print(f"provider:               {args.provider} (emulator on loopback, token required)")
    print(f"runs:                   {args.runs} each, interleaved")
    print(f"python -c pass:         {r['baseline_ms']:.1f} ms median")
    print(f"one-shot check:         {r['subject_ms']:.1f} ms median, exit codes {r['exit_codes']}")
    print(f"ratio:                  {r['ratio']:.2f}x  (target <= 3.0x)")
    print(f"requests per check:     {r['requests_per_check']:.2f}  (target 1, token cached)")
    print(f"token requests:         {r['token_requests']} during the {args.runs} measured checks")
    print(f"agent-style polls:      {args.polls} in one process")
    print(f"requests per poll:      {p['requests_per_poll']:.2f}")
    print(f"connections opened:     {p['connections']}  (keep-alive reuse)")
    print(f"time per poll:          {p['poll_ms']:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
