"""What the node's own files may hold (issue 11): a FIFO under --dmi-root, non-ASCII digits in a
proc tree, a state record we did not write. Each is an answer or one line, never a hang, a
misread number or a traceback."""

from __future__ import annotations

import json
import os
import sys

import pytest
from test_conntrack import _drop_args, _stat_row, make_proc

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator


def test_a_fifo_in_the_dmi_tree_cannot_hang_host_event_log(run_cli, tmp_path):
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    os.mkfifo(dmi / "sys_vendor")
    (dmi / "product_name").write_text("Alibaba Cloud ECS\n")
    with MetadataEmulator("alibaba", []) as emu:
        proc = run_cli(
            "host-event-log",
            "--dmi-root",
            str(dmi),
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            "--log-path",
            str(tmp_path / "host_event.log"),
            timeout=30,
        )
    assert proc.returncode == 0, proc.stderr  # the product name still tells the provider
    assert proc.stdout.startswith("0 new event line(s)")


@pytest.mark.parametrize("count", ["٣", "1_0", "+5", "0x10", "²"])
def test_conntrack_counters_are_ascii_decimal(run_cli, tmp_path, count):
    """int() would read "٣" as 3 and "1_0" as 10: a misread table, not an error."""
    make_proc(tmp_path, limit=100)
    (tmp_path / "sys/net/netfilter/nf_conntrack_count").write_text(f"{count}\n")
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read conntrack counters: invalid literal")


@pytest.mark.parametrize("cell", ["0x00000001", "0000_001", "٣"])
def test_conntrack_statistics_are_ascii_hex(run_cli, tmp_path, cell):
    row = _stat_row().split()
    row[10] = cell  # the drop column
    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[" ".join(row)])
    proc = run_cli(*_drop_args(proc_root, tmp_path / "state"))
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read conntrack drop statistics: invalid hex counter")


@pytest.mark.parametrize(
    "counters", [[1], {"drop": "5"}, {"drop": [1]}, {"drop": True}, {"drop": 1e300}, None]
)
def test_a_conntrack_record_we_did_not_write_starts_over(run_cli, tmp_path, counters):
    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row(drop=7)])
    state = tmp_path / "state"
    state.mkdir()
    record = {"boot_id": "boot-1", "counters": counters}
    (state / "conntrack.json").write_text(json.dumps({os.path.realpath(proc_root): record}))
    proc = run_cli(*_drop_args(proc_root, state))
    assert (proc.returncode, proc.stdout) == (0, "Conntrack table usage: 10 out of 100\n")
