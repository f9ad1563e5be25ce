"""The ``journalctl`` journal backend: ``journalctl --output=json`` as a child process.

Private: :mod:`healthcheck.sdk.journal` picks the backend (documented in ``docs/sdk.md``). The
child is an argv process in its own process group, streamed line by line with a cap on the line
length, killed and reaped when the consumer stops early; its stderr goes to a file, never a pipe
it could block on.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence

from healthcheck.sdk.journal import Entry, JournalError, _decode
from healthcheck.sdk.process import run_program

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from typing import IO

# journalctl's JSON escapes each byte of a field as at most 6 characters; 64 KiB of message
# (libsystemd's default data threshold) therefore fits in a line of this many bytes.
MAX_LINE_BYTES = 6 * 65536 + 4096
_STDERR_LIMIT = 4096


def probe(journalctl: str, paths: list[str]) -> str | None:
    """None when journalctl opens every file of ``paths``, else its reason."""
    argv = [journalctl, *(f"--file={p}" for p in paths), "--lines=0", "--quiet"]
    result = run_program(argv, timeout=10)
    if result.error:
        raise JournalError(result.error)
    if result.returncode == 0:
        return None
    text = _decode(result.stderr).strip().splitlines()
    reason = text[-1] if text else f"exit status {result.returncode}"
    return reason.removeprefix("Failed to open files: ")


def argv_for(
    journalctl: str,
    files: list[str] | None,
    matches: Sequence[Mapping[str, str]],
    since: float | None,
    until: float | None,
    fields: Sequence[str],
) -> list[str]:
    """The journalctl command line that prints the window as JSON, one entry a line."""
    argv = [journalctl, "--output=json", "--all", "--no-pager", "--quiet"]
    if files is not None:
        argv += [f"--file={path}" for path in files]
    if since is not None:
        argv.append(f"--since=@{since:.6f}")
    if until is not None:
        argv.append(f"--until=@{until:.6f}")
    argv.append("--output-fields=" + ",".join(dict.fromkeys(("MESSAGE", *fields))))
    terms: list[str] = []
    for group in matches:
        if terms:
            terms.append("+")
        terms += [f"{name}={value}" for name, value in group.items()]
    return argv + terms


def _json_value(value: object) -> str | None:
    """A field of journalctl's JSON: a string, bytes as a list of ints, or a list of values."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return _decode(bytes(value))
        return _json_value(value[0]) if value else None
    return str(value)


def start(argv: list[str]) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """journalctl running with ``argv``, and the file its stderr goes to."""
    # stderr goes to a file, not a pipe, so a chatty journalctl can never block on it.
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the reading generator
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            process_group=0,
            close_fds=True,
        )
    except OSError as exc:
        stderr.close()
        raise JournalError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    return proc, stderr


def read_entries(
    proc: subprocess.Popen[bytes],
    stderr: IO[bytes],
    since: float | None,
    until: float | None,
    fields: Sequence[str],
) -> Iterator[Entry]:
    """The window's entries from journalctl's output; the child is killed and reaped when the
    consumer stops, and a failing journalctl is a :class:`JournalError` at the end."""
    since_us = None if since is None else int(since * 1_000_000)
    until_us = None if until is None else int(until * 1_000_000)
    finished = False
    out = proc.stdout
    assert out is not None  # started with stdout=PIPE
    try:
        while True:
            line = out.readline(MAX_LINE_BYTES)
            if not line:
                break
            if not line.endswith(b"\n") and len(line) >= MAX_LINE_BYTES:
                while line and not line.endswith(b"\n"):
                    line = out.readline(MAX_LINE_BYTES)  # skip the rest of an oversized entry
                continue
            try:
                doc = json.loads(line)
                realtime = int(doc["__REALTIME_TIMESTAMP"])
            except (ValueError, KeyError, TypeError):
                continue
            if since_us is not None and realtime < since_us:
                continue
            if until_us is not None and realtime > until_us:
                return
            message = _json_value(doc.get("MESSAGE")) or ""
            extra = {}
            for name in fields:
                value = _json_value(doc.get(name))
                if value is not None:
                    extra[name] = value
            yield Entry(realtime / 1_000_000, message, extra)
        finished = True
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        out.close()
        returncode = proc.wait()
        stderr.seek(0)
        err = _decode(stderr.read(_STDERR_LIMIT)).strip()
        stderr.close()
    if finished and returncode not in (0, None):
        lines = err.splitlines()
        reason = lines[-1] if lines else f"exit status {returncode}"
        raise JournalError(f"journalctl failed: {reason}")
