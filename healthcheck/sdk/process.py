"""Run an external program the way NPD runs a custom plugin, minus its known hangs.

- argv only: no shell ever parses anything we pass;
- the child gets its own process group, and at the deadline the whole group gets SIGKILL;
- stdout and stderr are read concurrently; at most ``limit`` bytes of each are kept and the rest
  is read and discarded, so a chatty child never blocks on a full pipe;
- unlike NPD (issue #1050), waiting for the pipes and for the child is bounded too: a descendant
  that escaped the group or a child stuck in D state cannot hang the caller;
- every child we can reap is reaped, including group members re-parented to us when we are
  PID 1 or a subreaper (NPD #726, #941).

Documented in ``docs/sdk.md``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from healthcheck.sdk.text import LOG_LIMIT, one_line

__all__ = ["DEFAULT_OUTPUT_LIMIT", "KILL_GRACE", "ProgramResult", "run_program"]

DEFAULT_OUTPUT_LIMIT = 4096  # NPD's maxCustomPluginBufferBytes
KILL_GRACE = 1.0  # how long to wait for pipes and the child after SIGKILL


class ProgramResult:
    """How a program ended.

    ``returncode`` is the exit status, negative for death by signal, ``None`` when the program
    never started (``error`` says why) or could not be reaped. ``timed_out`` is true when the
    deadline killed the group. ``pid`` is the child's pid, which is also its process group id.
    """

    __slots__ = ("duration", "error", "pid", "returncode", "stderr", "stdout", "timed_out")

    def __init__(
        self,
        returncode: int | None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        timed_out: bool = False,
        error: str | None = None,
        duration: float = 0.0,
        pid: int | None = None,
    ) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.timed_out = timed_out
        self.error = error
        self.duration = duration
        self.pid = pid

    @property
    def ok(self) -> bool:
        """Exit status 0, in time, and started."""
        return self.returncode == 0 and not self.timed_out and self.error is None

    def __repr__(self) -> str:
        return (
            f"ProgramResult(returncode={self.returncode}, timed_out={self.timed_out}, "
            f"error={self.error!r}, stdout={self.stdout[:40]!r})"
        )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _reap_group(pgid: int, wait: float = 0.0) -> None:
    """Reap members of ``pgid`` that were re-parented to us (we are PID 1 or a subreaper).

    After a SIGKILL the members die asynchronously, so the caller may ``wait`` a bounded time
    for them; members that are not our children end the loop at once (ChildProcessError).
    """
    give_up = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() >= give_up:
                return
            time.sleep(0.005)


def run_program(
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    limit: int = DEFAULT_OUTPUT_LIMIT,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    kill_grace: float = KILL_GRACE,
) -> ProgramResult:
    """Run ``argv`` (a list of strings) with a deadline of ``timeout`` seconds.

    Never raises for anything the program does; a program that cannot be started comes back with
    ``error`` set (``"cannot start /path: No such file or directory"``).
    """
    if isinstance(argv, (str, bytes)) or not argv:
        raise TypeError("argv must be a non-empty list of strings, never a shell string")
    args = [os.fspath(a) for a in argv]
    started = time.monotonic()
    deadline = started + max(0.0, timeout)
    try:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            process_group=0,
            close_fds=True,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in argv, env or cwd
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        return ProgramResult(
            None,
            error=one_line(f"cannot start {args[0]}: {reason}", LOG_LIMIT),
            duration=time.monotonic() - started,
        )
    pgid = proc.pid  # process_group=0 makes the child the leader of a group of its own id
    stdout, stderr = proc.stdout, proc.stderr
    assert stdout is not None and stderr is not None  # both are PIPEs
    out, err = bytearray(), bytearray()
    kept = {stdout.fileno(): out, stderr.fileno(): err}
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(stdout, selectors.EVENT_READ)
        sel.register(stderr, selectors.EVENT_READ)
        read_until = deadline
        while sel.get_map():
            wait = read_until - time.monotonic()
            if wait <= 0:
                if timed_out:
                    break  # a descendant outside the group still holds a pipe: stop reading
                timed_out = True
                _kill_group(pgid)
                read_until = time.monotonic() + kill_grace
                continue
            for key, _ in sel.select(wait):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = kept[key.fd]
                if len(buf) < limit:
                    buf += chunk[: limit - len(buf)]
    stdout.close()
    stderr.close()
    returncode: int | None = None
    try:
        returncode = proc.wait(max(0.0, deadline - time.monotonic()) if not timed_out else 0)
    except subprocess.TimeoutExpired:
        if not timed_out:
            timed_out = True
            _kill_group(pgid)
    if returncode is None:
        _kill_group(pgid)  # the leader may have closed its pipes yet lingered
        try:
            returncode = proc.wait(kill_grace)
        except subprocess.TimeoutExpired:
            returncode = None  # uninterruptible sleep: the kernel will reap it after us
    _reap_group(pgid, kill_grace if timed_out else 0.0)
    return ProgramResult(
        returncode, bytes(out), bytes(err), timed_out, None, time.monotonic() - started, proc.pid
    )
