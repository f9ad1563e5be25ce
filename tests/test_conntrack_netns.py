"""conntrack against a real kernel table, filled to over 90% inside a network namespace.

The namespace is the test's own: conntrack counts per namespace against the machine-wide limit,
so the host's table and settings are never touched, and every datagram goes to 127.x.y.z inside
the namespace. The namespace is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
    pytest.mark.skipif(
        not (shutil.which("ip") and shutil.which("nft")), reason="needs iproute2 and nftables"
    ),
]

FLOOD = """
import socket, sys
count = int(sys.argv[1]); offset = int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(offset, offset + count):
    try:
        s.sendto(b"x", (f"127.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255 or 1}", 9))
    except OSError:
        pass  # ENOBUFS/EPERM once the table is full: the kernel is dropping, as intended
"""


def _sh(*argv, check=True):
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=check)


@pytest.fixture
def netns():
    name = f"hc-test-{uuid.uuid4().hex[:8]}"
    _sh("ip", "netns", "add", name)
    try:
        _sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        # a ct expression registers conntrack in this namespace
        for rule in (
            "add table inet hc",
            "add chain inet hc out { type filter hook output priority 0; }",
            "add rule inet hc out ct state new counter accept",
        ):
            _sh("ip", "netns", "exec", name, "nft", rule)
        _sh(
            "ip",
            "netns",
            "exec",
            name,
            "sysctl",
            "-q",
            "-w",
            "net.netfilter.nf_conntrack_udp_timeout=300",
        )
        yield name
    finally:
        _sh("ip", "netns", "del", name, check=False)


def _in_ns(name, *argv):
    return _sh("ip", "netns", "exec", name, *argv, check=False)


def test_real_table_over_90_percent_and_real_drops(netns, bin_path, tmp_path):
    healthcheck = bin_path("healthcheck")
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as fh:
        limit = int(fh.read())
    empty = _in_ns(netns, healthcheck, "check", "conntrack")
    assert empty.returncode == 0, empty.stdout
    assert empty.stdout.startswith("Conntrack table usage: ")

    state = ["--check-drops", "--state-dir", str(tmp_path)]
    assert _in_ns(netns, healthcheck, "check", "conntrack", *state).returncode == 0  # records

    flood = _in_ns(netns, sys.executable, "-c", FLOOD, str(int(limit * 0.95)), "1")
    assert flood.returncode == 0, flood.stderr
    full = _in_ns(netns, healthcheck, "check", "conntrack")
    count = int(full.stdout.split(": ")[1].split(" out of ")[0])
    assert count > limit * 0.9
    assert (full.returncode, full.stdout) == (
        1,
        f"Conntrack table usage over 90%: {count} out of {limit}\n",
    )

    # Past the limit the kernel drops new flows; the drop counters grow and --check-drops sees it.
    _in_ns(netns, sys.executable, "-c", FLOOD, str(int(limit * 0.2)), str(int(limit * 0.95) + 1))
    dropping = _in_ns(
        netns, healthcheck, "check", "conntrack", *state, "--max-output-length", "200"
    )
    assert dropping.returncode == 1
    assert dropping.stdout.startswith("Conntrack table usage over 90%: ")
    assert "; drop +" in dropping.stdout or "early_drop +" in dropping.stdout


COMPARE = """
import json
from healthcheck.sdk.proc import conntrack_stats_netlink, conntrack_stats_proc
print(json.dumps([conntrack_stats_proc("/proc"), conntrack_stats_netlink()]))
"""


def test_netlink_statistics_agree_with_proc(netns):
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as fh:
        limit = int(fh.read())
    _in_ns(netns, sys.executable, "-c", FLOOD, str(int(limit * 1.05)), "1")
    proc = _in_ns(netns, sys.executable, "-c", COMPARE)
    assert proc.returncode == 0, proc.stderr
    from_proc, from_netlink = json.loads(proc.stdout)
    assert from_proc["early_drop"] > 0, "the flood must have made the kernel drop"
    for counter in ("drop", "insert_failed", "early_drop"):
        assert from_netlink[counter] == from_proc[counter], counter
