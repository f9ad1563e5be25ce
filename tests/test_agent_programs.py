"""External programs (NPD's custom plugins) run by the agent: exit codes, message, timeouts."""

from __future__ import annotations

import pytest

from healthcheck import Status
from healthcheck._agent.programs import START_ERROR, run_check_program


def script(tmp_path, body: str, name: str = "plugin.sh", mode: int = 0o755) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return str(path)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("echo OK; exit 0", Status.OK, "OK"),
        ("echo '  NonOK  '; exit 1", Status.PROBLEM, "NonOK"),
        ("echo UNKNOWN; exit 3", Status.UNKNOWN, "UNKNOWN"),
        ("echo weird; exit 100", Status.UNKNOWN, "weird"),
        ("echo on stderr >&2; exit 1", Status.PROBLEM, ""),
        ("kill -9 $$", Status.UNKNOWN, ""),
    ],
)
def test_exit_code_protocol(tmp_path, body, status, message):
    result = run_check_program([script(tmp_path, body)], timeout=5, max_output_length=80)
    assert (result.status, result.message) == (status, message)


def test_stdout_is_cut_to_max_output_length_bytes(tmp_path):
    result = run_check_program(
        [script(tmp_path, "printf '%090d' 0")], timeout=5, max_output_length=80
    )
    assert result.status == Status.OK and result.message == "0" * 80


def test_args_are_argv_not_shell(tmp_path):
    path = script(tmp_path, 'echo "$1"; exit 1')
    result = run_check_program([path, "$(touch pwned); a b"], timeout=5, max_output_length=80)
    assert result.message == "$(touch pwned); a b"
    assert not (tmp_path / "pwned").exists()


def test_not_executable_and_missing_are_unknown_with_npd_message(tmp_path):
    path = script(tmp_path, "exit 0", mode=0o644)
    assert run_check_program([path], 5, 80).message == START_ERROR
    missing = run_check_program([str(tmp_path / "gone")], 5, 80)
    assert (missing.status, missing.message) == (Status.UNKNOWN, START_ERROR)


def test_timeout_kills_the_group_and_uses_npd_message(tmp_path):
    path = script(tmp_path, "echo partial; sleep 30 & sleep 30")
    result = run_check_program([path], timeout=0.5, max_output_length=200)
    assert result.status == Status.UNKNOWN
    assert result.message == (
        f'Timeout when running plugin "{path}": state - signal: killed. output - "partial\\n"'
    )
    assert len(run_check_program([path], 0.3, 80).message.encode()) == 80


def test_program_stderr_is_logged_as_one_bounded_line(tmp_path, caplog):
    """stderr never reaches the result; it is logged, one line, cut to CONDITION_LIMIT bytes."""
    from healthcheck.sdk.text import CONDITION_LIMIT

    path = script(
        tmp_path, "printf 'bad\\nforged line' >&2; head -c 5000 /dev/zero | tr '\\0' x >&2"
    )
    with caplog.at_level("INFO", logger="healthcheck._agent.programs"):
        result = run_check_program([path], timeout=5, max_output_length=80)
    assert result.message == ""
    (line,) = [r.getMessage() for r in caplog.records if "stderr" in r.getMessage()]
    assert "\n" not in line and "bad forged line" in line
    assert len(line.encode()) <= CONDITION_LIMIT + 300
