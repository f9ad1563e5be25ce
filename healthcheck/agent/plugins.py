"""NPD-style custom plugins: an external program named by path and args (spec 2.2-2.4).

The program runs through :func:`healthcheck.process.run_program` (argv only, own process group,
SIGKILL of the group at the deadline, bounded output and bounded waits). Its result follows
NPD's rules: exit 0 is OK, exit 1 a problem, anything else (other codes, death by signal, a
failure to start) unknown; the message is stdout, whitespace-trimmed, cut to
``max_output_length`` bytes; a timeout replaces it with NPD's "Timeout when running plugin"
text.
"""

from __future__ import annotations

from healthcheck.agent.conditions import go_quote
from healthcheck.protocol import Result, Status

START_ERROR = "Error in starting plugin. Please check the error log"
WAIT_ERROR = "Error in waiting for plugin. Please check the error log"


def cut_bytes(text: str, limit: int) -> str:
    """Cut to ``limit`` bytes on a UTF-8 boundary (NPD slices bytes; we keep valid UTF-8)."""
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def result_of(path: str, program, max_output_length: int) -> Result:
    """Turn a :class:`healthcheck.process.ProgramResult` into NPD's status and message."""
    if program.error is not None:
        return Result.unknown(START_ERROR)
    stdout = program.stdout.decode("utf-8", "replace")
    if program.timed_out:
        message = (
            f'Timeout when running plugin "{path}": state - signal: killed. '
            f"output - {go_quote(stdout)}"
        )
        return Result.unknown(cut_bytes(message, max_output_length))
    message = cut_bytes(stdout.strip(), max_output_length)
    if program.returncode is None:
        return Result.unknown(WAIT_ERROR)
    if program.returncode == 0:
        return Result(Status.OK, message)
    if program.returncode == 1:
        return Result(Status.PROBLEM, message)
    return Result(Status.UNKNOWN, message)


def run_plugin(argv, timeout: float, max_output_length: int, log=None) -> Result:
    """Run the program ``argv`` once with NPD's semantics; stderr goes to ``log`` only."""
    from healthcheck.process import run_program

    program = run_program(list(argv), timeout=timeout)
    if log is not None and program.stderr.strip():
        stderr = " ".join(program.stderr.decode("utf-8", "replace").split())
        log(f"plugin {argv[0]} stderr: {cut_bytes(stderr, 1024)}")
    if log is not None and program.error is not None:
        log(f"plugin {argv[0]}: {program.error}")
    return result_of(argv[0], program, max_output_length)
