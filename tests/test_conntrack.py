"""The conntrack checker against proc trees we build, and against this machine's real kernel."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

STAT_HEADER = (
    "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop "
    "early_drop icmp_error  expect_new expect_create expect_delete search_restart"
)


def _stat_row(entries=0, insert_failed=0, drop=0, early_drop=0) -> str:
    values = [entries, 0, 0, 0, 0, 0, 0, 0, 0, insert_failed, drop, early_drop, 0, 0, 0, 0, 0]
    return " ".join(f"{v:08x}" for v in values)


def make_proc(root, count=None, limit=None, legacy=False, stats=None):
    base = root / ("sys/net/ipv4/netfilter" if legacy else "sys/net/netfilter")
    prefix = "ip_conntrack" if legacy else "nf_conntrack"
    base.mkdir(parents=True, exist_ok=True)
    if count is not None:
        (base / f"{prefix}_count").write_text(f"{count}\n")
    if limit is not None:
        (base / f"{prefix}_max").write_text(f"{limit}\n")
    (root / "sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (root / "sys/kernel/random/boot_id").write_text("boot-1\n")
    if stats is not None:
        (root / "net/stat").mkdir(parents=True, exist_ok=True)
        (root / "net/stat/nf_conntrack").write_text("\n".join([STAT_HEADER, *stats]) + "\n")
    return root


def _drop_args(proc_root, state_dir) -> list[str]:
    return [
        "check",
        "conntrack",
        "--proc-root",
        str(proc_root),
        "--check-drops",
        "--state-dir",
        str(state_dir),
    ]


@pytest.mark.parametrize(
    ("count", "limit", "code", "message"),
    [
        (0, 262144, 0, "Conntrack table usage: 0 out of 262144"),
        (90, 100, 0, "Conntrack table usage: 90 out of 100"),  # the script's test is count > 90%
        (91, 100, 1, "Conntrack table usage over 90%: 91 out of 100"),
        (9, 9, 1, "Conntrack table usage over 90%: 9 out of 9"),  # 9 > 9*9/10 = 8 in bash
        (8, 9, 0, "Conntrack table usage: 8 out of 9"),
    ],
)
def test_messages_and_exit_codes_match_network_problem_sh(
    tmp_path, run_cli, count, limit, code, message
):
    make_proc(tmp_path, count, limit)
    proc = run_cli("check", "conntrack", f"--proc-root={tmp_path}")
    assert (proc.returncode, proc.stdout) == (code, message + "\n")


def test_threshold_changes_the_percent_in_the_message(tmp_path, run_cli):
    make_proc(tmp_path, 76, 100)
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path), "--threshold", "75")
    assert (proc.returncode, proc.stdout) == (1, "Conntrack table usage over 75%: 76 out of 100\n")


def test_legacy_ip_conntrack_pair_is_the_fallback(tmp_path, run_cli):
    make_proc(tmp_path, 5, 10, legacy=True)
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path))
    assert (proc.returncode, proc.stdout) == (0, "Conntrack table usage: 5 out of 10\n")


def test_half_a_pair_is_not_enough(tmp_path, run_cli):
    make_proc(tmp_path, count=5)  # nf_conntrack_count without nf_conntrack_max
    make_proc(tmp_path, 7, 10, legacy=True)
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path))
    assert proc.stdout == "Conntrack table usage: 7 out of 10\n"


def test_missing_counters_are_unknown_with_a_message(tmp_path, run_cli):
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path), "--max-output-length=300")
    assert proc.returncode == 2
    assert proc.stdout == f"conntrack counters not found under {tmp_path}/sys/net\n"


def test_unreadable_counter_is_unknown(tmp_path, run_cli):
    make_proc(tmp_path, limit=100)
    (tmp_path / "sys/net/netfilter/nf_conntrack_count").write_text("garbage\n")
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read conntrack counters: invalid literal")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--threshold", "abc"], 'argument --threshold: invalid integer "abc"'),
        (["--threshold", "0"], 'argument --threshold: "0" is below the minimum 1'),
        (["--threshold", "101"], 'argument --threshold: "101" is above the maximum 100'),
        (["--timeout", "5x"], 'argument --timeout: invalid duration "5x" (unknown unit "x")'),
        (["--timeout", "0s"], 'argument --timeout: duration "0s" must be > 0'),
        (["--max-output-length", "-1"], 'argument --max-output-length: "-1" must be >= 0'),
        (["--check-drops=maybe"], 'argument --check-drops: invalid boolean "maybe"'),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ],
)
def test_bad_flags_are_one_line_exit_2(run_cli, args, expected):
    proc = run_cli("check", "conntrack", *args)
    assert proc.returncode == 2
    assert proc.stdout.startswith("healthcheck check conntrack: ")
    # stdout is the protocol's one line of at most 80 bytes; a longer line is whole on stderr
    assert expected in proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1 and len(proc.stdout.encode()) <= 81
    assert "Traceback" not in proc.stdout + proc.stderr


def test_json_output(tmp_path, run_cli):
    make_proc(tmp_path, 95, 100)
    proc = run_cli("check", "conntrack", "--proc-root", str(tmp_path), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert doc["status"] == "PROBLEM" and doc["exit_code"] == 1
    assert doc["message"] == "Conntrack table usage over 90%: 95 out of 100"
    assert 0 <= doc["duration_seconds"] < 5


def test_drops_first_run_records_then_growth_is_a_problem(tmp_path, run_cli):
    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row(10, 1, 2, 0)] * 2)
    args = _drop_args(proc_root, tmp_path / "state")
    first = run_cli(*args)
    assert (first.returncode, first.stdout) == (0, "Conntrack table usage: 10 out of 100\n")
    again = run_cli(*args)
    assert again.returncode == 0, "no growth since the recorded run"
    (proc_root / "net/stat/nf_conntrack").write_text(
        "\n".join([STAT_HEADER, _stat_row(10, 1, 5, 0), _stat_row(10, 2, 2, 4)]) + "\n"
    )
    grown = run_cli(*args)
    # per-CPU rows are summed: drop 2+2 -> 5+2, insert_failed 1+1 -> 1+2, early_drop 0 -> 4
    assert (grown.returncode, grown.stdout) == (
        1,
        "Conntrack dropping: drop +3, insert_failed +1, early_drop +4 (10 out of 100)\n",
    )
    assert run_cli(*args).returncode == 0, "growth is measured against the previous run"


def test_drops_after_a_reboot_start_over(tmp_path, run_cli):
    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row(drop=50)])
    args = [
        "check",
        "conntrack",
        "--proc-root",
        str(proc_root),
        "--check-drops=true",
        "--state-dir",
        str(tmp_path / "state"),
    ]
    assert run_cli(*args).returncode == 0
    (proc_root / "sys/kernel/random/boot_id").write_text("boot-2\n")
    (proc_root / "net/stat/nf_conntrack").write_text(STAT_HEADER + "\n" + _stat_row(drop=60))
    assert run_cli(*args).returncode == 0, "a new boot id means the counters restarted"


def test_drops_with_an_unwritable_state_dir_is_unknown(tmp_path, run_cli):
    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row()])
    proc = run_cli(
        *_drop_args(proc_root, "/proc/not-writable"),
        "--max-output-length",
        "300",
    )
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read conntrack drop statistics: cannot lock state file")


@pytest.mark.skipif(shutil.which("conntrack") is None, reason="Debian's conntrack is not installed")
def test_real_proc_agrees_with_conntrack_tool(run_cli):
    tool = subprocess.run(["conntrack", "-C"], capture_output=True, text=True, timeout=10)
    if tool.returncode != 0:
        pytest.skip(f"conntrack -C cannot read this kernel's table: {tool.stderr.strip()}")
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as fh:
        limit = int(fh.read())
    proc = run_cli("check", "conntrack")
    ours = int(proc.stdout.split(": ")[1].split(" out of ")[0])
    after = int(subprocess.run(["conntrack", "-C"], capture_output=True, text=True).stdout)
    # the table moves under us; the tool's reading before and after must bracket ours
    assert min(int(tool.stdout), after) - 5 <= ours <= max(int(tool.stdout), after) + 5
    assert proc.stdout.endswith(f" out of {limit}\n")
