"""run_program against real child processes: deadlines, process groups, bounded output."""

from __future__ import annotations

import ctypes
import os
import sys
import time

import pytest

from healthcheck.sdk.process import run_program

PY = sys.executable
PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture
def subreaper():
    """Make this test process the subreaper, as the agent is when it runs as PID 1.

    Orphaned grandchildren then become our children, so the test can see whether run_program
    reaps them instead of leaving zombies.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    yield
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def test_exit_codes_and_streams_are_kept_apart():
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    result = run_program([PY, "-c", code], timeout=10)
    assert result.returncode == 3
    assert result.stdout == b"out\n"
    assert result.stderr == b"err\n"
    assert not result.timed_out and result.error is None


def test_death_by_signal_is_a_negative_returncode():
    result = run_program(
        [PY, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)"], timeout=10
    )
    assert result.returncode == -15


def test_sleeping_child_is_killed_at_the_deadline():
    start = time.monotonic()
    result = run_program(["sleep", "30"], timeout=0.5)
    elapsed = time.monotonic() - start
    assert result.timed_out
    assert result.returncode == -9
    assert 0.5 <= elapsed < 3


def test_argv_is_never_parsed_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    result = run_program(["echo", f"; touch {marker}"], timeout=5)
    assert result.stdout == f"; touch {marker}\n".encode()
    assert not marker.exists()
    with pytest.raises(TypeError):
        run_program(f"echo hi; touch {marker}", timeout=5)


def test_grandchild_holding_stdout_is_killed_with_its_group(subreaper):
    # The child exits at once; its grandchild keeps stdout open (NPD #372, #1050).
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "print('parent done', flush=True)\n"
    )
    start = time.monotonic()
    result = run_program([PY, "-c", code], timeout=1.0)
    elapsed = time.monotonic() - start
    assert elapsed < 4, "a grandchild holding the pipe must not outlive the deadline"
    assert result.timed_out
    assert result.stdout == b"parent done\n"
    # The orphaned grandchild was re-parented to us (the subreaper): it must be killed and
    # reaped, not left running or as a zombie.
    assert _group_members(result.pid) == []


def _group_members(pgid: int) -> list[int]:
    """Every process (zombies included) whose process group is ``pgid``."""
    return [pid for pid, fields in _stat_fields() if int(fields[2]) == pgid]


def _stat_fields():
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                yield int(entry), fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def test_descendant_that_left_the_group_cannot_hang_the_caller():
    # setsid() puts the grandchild in a group of its own, out of reach of killpg; the pipe
    # stays open, and only the bounded post-kill drain lets run_program return.
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(5)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    result = run_program([PY, "-c", code], timeout=0.5, kill_grace=0.5)
    assert result.timed_out
    assert time.monotonic() - start < 3


def test_megabyte_of_output_is_drained_and_only_4k_kept():
    code = "import sys; sys.stdout.write('x' * 1_000_000); sys.stderr.write('y' * 1_000_000)"
    result = run_program([PY, "-c", code], timeout=20)
    assert result.returncode == 0
    assert result.stdout == b"x" * 4096
    assert result.stderr == b"y" * 4096
    assert not result.timed_out


def test_missing_and_non_executable_programs_report_an_error(tmp_path):
    missing = run_program([str(tmp_path / "nope")], timeout=5)
    assert missing.returncode is None
    assert missing.error == f"cannot start {tmp_path / 'nope'}: No such file or directory"
    script = tmp_path / "plugin.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    denied = run_program([str(script)], timeout=5)
    assert denied.error == f"cannot start {script}: Permission denied"


def test_child_runs_in_its_own_process_group():
    result = run_program([PY, "-c", "import os; print(os.getpgid(0) == os.getpid())"], timeout=5)
    assert result.stdout == b"True\n"


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["/bin/tr\x00ue"], "embedded null byte"),  # a path from a YAML config can hold a NUL
        ([PY, "-c", "pass", "a\x00b"], "embedded null byte"),
        (["/no/such\nprogram"], "No such file or directory"),
    ],
)
def test_a_program_that_cannot_start_is_an_error_line_not_an_exception(argv, why):
    result = run_program(argv, timeout=10)
    assert result.returncode is None and why in result.error
    assert "\n" not in result.error and result.error.startswith("cannot start ")
