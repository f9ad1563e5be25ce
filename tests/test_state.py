"""State files: atomic replacement, locking between processes, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from healthcheck.sdk.state import StateError, locked_state, read_state, write_state


def test_round_trip_and_missing_or_corrupt_files(tmp_path):
    path = str(tmp_path / "sub" / "s.json")
    assert read_state(path) == {}
    write_state(path, {"a": 1})
    assert read_state(path) == {"a": 1}
    assert not [p for p in os.listdir(tmp_path / "sub") if p.endswith(".tmp")]
    (tmp_path / "sub" / "s.json").write_text("{not json")
    assert read_state(path) == {}
    (tmp_path / "sub" / "s.json").write_text("[1, 2]")
    assert read_state(path) == {}


def test_locked_update_writes_only_on_change(tmp_path):
    path = str(tmp_path / "s.json")
    with locked_state(path) as state:
        state["n"] = 1
    mtime = os.stat(path).st_mtime_ns
    with locked_state(path) as state:
        assert state == {"n": 1}
    assert os.stat(path).st_mtime_ns == mtime


def test_concurrent_processes_do_not_lose_updates(tmp_path):
    path = str(tmp_path / "counter.json")
    code = (
        "import sys\n"
        "from healthcheck.sdk.state import locked_state\n"
        "for _ in range(50):\n"
        "    with locked_state(sys.argv[1], wait=30) as s:\n"
        "        s['n'] = s.get('n', 0) + 1\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, path]) for _ in range(4)]
    assert [p.wait(60) for p in procs] == [0, 0, 0, 0]
    with open(path) as fh:
        assert json.load(fh) == {"n": 200}


def test_unwritable_directory_is_a_state_error(tmp_path):
    if os.geteuid() == 0:
        target = "/proc/node-healthcheck-state/s.json"  # even root cannot create files in /proc
    else:
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        target = str(locked / "s.json")
    with pytest.raises(StateError, match="--state-dir"):
        write_state(target, {"a": 1})
    with pytest.raises(StateError, match="cannot lock"), locked_state(target):
        pass


@pytest.mark.parametrize("value", [10**5000, object(), {1.5j}], ids=["huge", "object", "set"])
def test_a_state_json_cannot_hold_is_a_state_error_and_nothing_written(tmp_path, value):
    """Before: json.dumps's ValueError (an int past 4300 digits) or TypeError escaped every
    caller, which catch StateError."""
    path = str(tmp_path / "s.json")
    with pytest.raises(StateError, match="cannot write state file"):
        write_state(path, {"a": value})
    assert os.listdir(tmp_path) == []
