"""Cold start of a one-shot check against the bare interpreter, measured in one process.

Prints the median wall time of ``healthcheck check conntrack`` (or the command given) divided by
the median of ``python -c pass`` from the same interpreter, and the check's peak RSS. Runs are
interleaved so that machine noise hits both sides alike.

    .venv/bin/python bench/coldstart.py [--runs 40] [-- healthcheck check conntrack ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

# wait4's ru_maxrss counts the parent's pages between fork and exec (the bench's own ~13 MiB),
# so peak RSS is read from the child itself: VmHWM of its own address space, at exit. Run it
# under -P: the script's directory goes first on sys.path, as when the script runs by its
# shebang, and not the working directory (a source tree would be imported instead of the
# installed package).
RSS_PROBE = (
    "import atexit, sys\n"
    "def report():\n"
    "    with open('/proc/self/status') as fh:\n"
    "        hwm = [l for l in fh if l.startswith('VmHWM:')][0].split()[1]\n"
    "    sys.stderr.write(f'\\nVMHWM {hwm}\\n')\n"
    "atexit.register(report)\n"
    "sys.argv = sys.argv[1:]\n"
    "if sys.argv:\n"
    "    sys.path.insert(0, sys.argv[0].rpartition('/')[0])\n"
    "    with open(sys.argv[0]) as fh:\n"
    "        code = compile(fh.read(), sys.argv[0], 'exec')\n"
    "    exec(code, {'__name__': '__main__'})\n"
)


def timed_run(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and exit code of one run of ``argv``."""
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, code


def peak_rss_kib(script_argv: list[str]) -> int:
    """Peak resident set of a Python script run (``[]`` for the bare interpreter)."""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", RSS_PROBE, *script_argv],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return int(proc.stderr.rsplit("VMHWM ", 1)[1].split()[0])


def warm_up(baseline: list[str], subject: list[str], rounds: int = 3) -> None:
    """Fill the page cache (and any caches the subject keeps) before measuring."""
    for _ in range(rounds):
        timed_run(baseline)
        timed_run(subject)


def interleaved(baseline: list[str], subject: list[str], runs: int):
    """``runs`` alternating runs of each: baseline times, subject times, subject exit codes."""
    base_t, subj_t, codes = [], [], set()
    for _ in range(runs):
        base_t.append(timed_run(baseline)[0])
        elapsed, code = timed_run(subject)
        subj_t.append(elapsed)
        codes.add(code)
    return base_t, subj_t, codes


def measure(baseline: list[str], subject: list[str], runs: int) -> dict:
    """Interleaved timings of ``baseline`` and ``subject``; ``subject[1:]`` is a Python script."""
    warm_up(baseline, subject)
    base_t, subj_t, codes = interleaved(baseline, subject, runs)
    return {
        "baseline_ms": statistics.median(base_t) * 1000,
        "subject_ms": statistics.median(subj_t) * 1000,
        "ratio": statistics.median(subj_t) / statistics.median(base_t),
        "baseline_rss_mib": max(peak_rss_kib([]) for _ in range(3)) / 1024,
        "subject_rss_mib": max(peak_rss_kib(subject[1:]) for _ in range(3)) / 1024,
        "exit_codes": sorted(codes),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("command", nargs="*", help="the one-shot command (default: conntrack)")
    args = parser.parse_args()
    script = shutil.which("healthcheck", path=os.path.dirname(sys.executable))
    if script is None:
        print("healthcheck is not installed next to this interpreter", file=sys.stderr)
        return 2
    command = args.command or [script, "check", "conntrack"]
    if command[0] in ("healthcheck", "health-checker", "log-counter"):
        command[0] = shutil.which(command[0], path=os.path.dirname(sys.executable)) or command[0]
    # Run the script through the same interpreter the baseline uses, exactly as its shebang does.
    subject = (
        [sys.executable, *command]
        if command[0].endswith(tuple(("healthcheck", "health-checker", "log-counter")))
        else command
    )
    r = measure([sys.executable, "-c", "pass"], subject, args.runs)
    print(f"command:            {' '.join(command)}")
    print(f"runs:               {args.runs} each, interleaved")
    print(f"python -c pass:     {r['baseline_ms']:.1f} ms median, {r['baseline_rss_mib']:.1f} MiB")
    print(f"one-shot check:     {r['subject_ms']:.1f} ms median, exit codes {r['exit_codes']}")
    print(f"ratio:              {r['ratio']:.2f}x  (target <= 3.0x)")
    print(f"peak RSS of check:  {r['subject_rss_mib']:.1f} MiB  (target <= 20 MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
