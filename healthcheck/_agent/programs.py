"""External programs the agent runs as checks: NPD's "custom plugins", named by path and args
in the config (spec 2.2-2.4). Not pluggy plugins: those are the in-process checkers.

The program runs through :func:`healthcheck.sdk.process.run_program` (argv only, own process group,
SIGKILL of the group at the deadline, bounded output and bounded waits). Its result follows
NPD's rules: exit 0 is OK, exit 1 a problem, anything else (other codes, death by signal, a
failure to start) unknown; the message is stdout, whitespace-trimmed, made one line, cut to
``max_output_length`` bytes on a UTF-8 boundary; a timeout replaces it with NPD's "Timeout
when running plugin" text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from healthcheck._agent.conditions import go_quote
from healthcheck._protocol import Result, Status
from healthcheck.sdk.process import ProgramResult, run_program
from healthcheck.sdk.text import CONDITION_LIMIT, one_line

_log = logging.getLogger(__name__)

START_ERROR = "Error in starting plugin. Please check the error log"
WAIT_ERROR = "Error in waiting for plugin. Please check the error log"


def result_of(path: str, program: ProgramResult, max_output_length: int) -> Result:
    """Turn a :class:`healthcheck.sdk.process.ProgramResult` into NPD's status and message."""
    if program.error is not None:
        return Result.unknown(START_ERROR)
    stdout = program.stdout.decode("utf-8", "replace")
    if program.timed_out:
        message = (
            f'Timeout when running plugin "{path}": state - signal: killed. '
            f"output - {go_quote(stdout)}"
        )
        return Result.unknown(one_line(message, max_output_length))
    # NPD keeps the trimmed output cut to max_output_length bytes; we also make it one line
    # (control characters become spaces) and cut on a UTF-8 boundary.
    message = one_line(stdout, max_output_length)
    if program.returncode is None:
        return Result.unknown(WAIT_ERROR)
    if program.returncode == 0:
        return Result(Status.OK, message)
    if program.returncode == 1:
        return Result(Status.PROBLEM, message)
    return Result(Status.UNKNOWN, message)


def run_check_program(argv: Sequence[str], timeout: float, max_output_length: int) -> Result:
    """Run the program ``argv`` once with NPD's semantics; its stderr goes to the log only
    (the log line keeps NPD's word, "plugin")."""
    program = run_program(list(argv), timeout=timeout)
    name = one_line(argv[0], 200)
    if program.stderr.strip():
        stderr = one_line(program.stderr.decode("utf-8", "replace"), CONDITION_LIMIT)
        _log.warning("plugin %s stderr: %s", name, stderr)
    if program.error is not None:
        _log.warning("plugin %s: %s", name, one_line(program.error, CONDITION_LIMIT))
    return result_of(argv[0], program, max_output_length)
