"""``log-counter``: the same argv through NPD's binary and ours, over the same REAL journal files
(written by systemd-journal-remote). NPD's binary waits a second per run, so the cases run
several at a time."""

from __future__ import annotations

import time

import pytest
from journalfile import Record, write_journal
from npd_diff.harness import Case, run_cases

KUBELET = "Started Kubernetes kubelet."
STOPPING = "Stopping Kubernetes kubelet..."
BAD_LOOKBACK = 'failed to parse lookback duration "5x": time: unknown unit "x" in duration "5x"'


@pytest.fixture(scope="module")
def journal_dir(tmp_path_factory):
    """One journal: kubelet starts and stops, kernel lines, a multi-line message, UTF-8."""
    now = time.time()
    lines = [
        ("systemd", KUBELET),
        ("systemd", STOPPING),
        ("systemd", KUBELET),
        ("systemd", "  Started Kubernetes kubelet.  "),
        ("systemd", KUBELET + " again"),
        ("kernel", "unregister_netdevice: waiting for eth0 to become free. Usage count = 2"),
        ("kernel", "unregister_netdevice: waiting for lo to become free. Usage count = 1"),
        ("kernel", "a1\nb2"),
        ("kernel", "ÄÖÜ straße"),
        ("kernel", "C:\\path a|b"),
        ("dockerd", "returned error: readlink /var/lib/docker/overlay2/x: invalid argument"),
    ]
    records = [
        Record(now - 120 + i, message, identifier=ident) for i, (ident, message) in enumerate(lines)
    ]
    records.insert(0, Record(now - 3 * 3600, KUBELET, identifier="systemd"))  # outside 20m
    directory = tmp_path_factory.mktemp("npd-diff-journal")
    write_journal(directory, records, name="system.journal")
    return str(directory)


def _counts(d: str) -> list[Case]:
    src = f"--log-path={d}"
    sd = ["--journald-source=systemd", src, "--lookback=20m"]
    kern = ["--journald-source=kernel", src, "--lookback=20m"]
    restart = "Started (Kubernetes kubelet|kubelet.service|kubelet.service - .*)."
    stop = "Stopping (Kubernetes kubelet|kubelet.service|kubelet.service - .*)..."
    cases = [
        Case("shipped kubelet rule", [*sd, "--count=2", f"--pattern={restart}"]),
        Case("with revert", [*sd, "--count=2", f"--pattern={restart}", f"--revert-pattern={stop}"]),
        Case("below threshold", [*sd, "--count=9", f"--pattern={restart}"]),
        Case("empty pattern counts all", [*sd, "--count=5"]),
        Case("lookback 4h reaches the old line", [*sd[:2], "--lookback=4h", "--count=4"]),
        Case("no lookback: no history", [*sd[:2], "--count=1"]),
        Case("delay past uptime", [*sd, "--delay=2562047h", "--count=1"]),
        Case("suffix blocks the match", [*sd, "--count=1", "--pattern=Started Kubernetes kubelet"]),
        Case(
            "kernel shipped rule",
            [*kern, "--count=2", r"--pattern=waiting for \w+ to become free. Usage count = \d+"],
        ),
        Case("multi-line pattern", [*kern, "--count=1", r"--pattern=a1\nb2"]),
        Case("(?s) pattern", [*kern, "--count=1", "--pattern=(?s)a1.+"]),
        Case("UTF-8", [*kern, "--count=1", "--pattern=straße"]),
        Case("literal |", [*kern, "--count=1", r"--pattern=a\|b"]),
        Case("\\Q..\\E", [*kern, "--count=1", r"--pattern=\Q:\path a|b\E"]),
        Case("named group (?<n>)", [*kern, "--count=1", "--pattern=(?<n>straße)"]),
        Case("(?U)", [*kern, "--count=1", "--pattern=(?U)st.*e"]),
        Case("unknown source", ["--journald-source=nobody", src, "--lookback=20m"]),
        Case("^ anchor", [*kern, "--count=1", "--pattern=^unregister_netdevice: .* = 1"]),
        Case("$ anchor", [*kern, "--count=2", "--pattern=Usage count = \\d$"]),
        Case("(?m) anchors", [*kern, "--count=1", "--pattern=(?m)^b2$"]),
        Case("case matters", [*sd, "--count=1", "--pattern=started kubernetes kubelet."]),
        Case("(?i)", [*sd, "--count=3", "--pattern=(?i)started kubernetes kubelet."]),
        Case("revert only", [*sd, f"--revert-pattern={stop}", "--count=0"]),
        Case("delay 1m", [*sd, "--delay=1m", "--count=2", f"--pattern={restart}"]),
        Case("lookback 90s", [*sd[:2], "--lookback=90s", "--count=1", f"--pattern={restart}"]),
        Case("count 0x2", [*sd, "--count=0x2", f"--pattern={restart}"]),
        Case("count 010", [*sd, "--count=010", f"--pattern={restart}"]),
        Case("count 0b11", [*sd, "--count=0b11", f"--pattern={restart}"]),
        Case("count 0o7", [*sd, "--count=0o7", f"--pattern={restart}"]),
        Case("count 0_3", [*sd, "--count=0_3", f"--pattern={restart}"]),
        Case("count 0x_3", [*sd, "--count=0x_3", f"--pattern={restart}"]),
        Case("count +2", [*sd, "--count=+2", f"--pattern={restart}"]),
        Case("count -1", [*sd, "--count=-1", "--pattern=nothing matches this"]),
        Case("count 0", [*sd, "--count=0", "--pattern=nothing matches this"]),
        Case("klog flags", [*sd, "--v=2", "--vmodule=a=1", "--logtostderr", "--count=2"]),
        Case("stray argument and --", [*sd, "stray", "--count=2", "--", "--bogus"]),
        Case(
            "alternation quirk",
            [*kern, "--count=3", "--pattern=eth0 to become free|straße"],
            # NPD anchors only the last alternative, so the eth0 line is counted again on
            # every later push (README: alternation is anchored as a whole here).
            npd_differs=(
                (1, "Found 5 matching logs, which meets the threshold of 3"),
                (0, ""),
            ),
        ),
    ]
    return cases


def _errors(d: str) -> list[Case]:
    src = f"--log-path={d}"
    base = ["--journald-source=systemd", src, "--lookback=20m"]
    bad_counts = [
        "0x",
        "0b",
        "",
        " 3",
        "3 ",
        "٣",
        "1__0",
        "_1",
        "1_",
        "0x2.0",
        "1e3",
        "99999999999999999999",
        "-0x8000000000000001",
    ]
    patterns = [
        r"\C",
        r"[\C]",
        "a(",
        "a)",
        "[a",
        "[z-a]",
        "a**",
        "x{1001}",
        "(a{500}){3}",
        "(?P<n",
        "(?P=n)",
        "(?P<n>a)(?P<n>b)",
        "\\",
        "*",
        r"\8",
        "[[:foo:]]",
        r"\pX",
        "(?x)a",
        "x{2,1}",
        "(" * 1001 + ")" * 1001,
        "a\nb(",
    ]
    cases = [Case(f"count {c!r}", [*base, f"--count={c}"]) for c in bad_counts]
    cases += [Case(f"pattern {p[:30]!r}", [*base, f"--pattern={p}"]) for p in patterns]
    cases.append(Case("revert pattern \\C", [*base, r"--revert-pattern=\C"]))
    cases += [
        Case("log path missing", ["--journald-source=x", "--log-path=/nonexistent/dir"]),
        Case("log path a file", ["--journald-source=x", "--log-path=/etc/passwd"]),
        Case("log path with newline", ["--journald-source=x", "--log-path=/no\nsuch"]),
        Case("empty source", [src, "--lookback=20m"]),
        Case("empty source, missing path", ["--log-path=/nonexistent"]),
        Case("bad pattern, missing path", ["--log-path=/nonexistent", "--pattern=a("]),
        Case("--bogus", [*base, "--bogus"]),
        Case("--log_dir (not bridged)", [*base, "--log_dir=/tmp"]),
        Case("--count missing value", [*base, "--count"]),
        Case("-h", [*base, "-h"]),
        Case(
            "bad lookback",
            ["--journald-source=x", src, "--lookback=5x"],
            # klog.Fatalf: exit 255 and nothing on stdout; ours is a clean usage error.
            npd_differs=(
                (255, ""),
                (2, BAD_LOOKBACK[:80]),
            ),
        ),
    ]
    return cases


def test_log_counter_counts_as_npd(npd_bin, our_bin, journal_dir):
    cases = _counts(journal_dir)
    mismatches = run_cases(npd_bin("log-counter"), our_bin("log-counter"), cases)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} cases differ:\n" + "\n".join(
        mismatches
    )


def test_log_counter_errors_as_npd(npd_bin, our_bin, journal_dir):
    cases = _errors(journal_dir)
    mismatches = run_cases(npd_bin("log-counter"), our_bin("log-counter"), cases)
    assert not mismatches, f"{len(mismatches)} of {len(cases)} cases differ:\n" + "\n".join(
        mismatches
    )
