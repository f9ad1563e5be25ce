"""Small JSON state files: read without a lock, updated under a lock, replaced atomically.

Several checkers keep a little memory between one-shot runs (the last repair time, conntrack
counters, a metadata token). Two invocations may overlap (a systemd timer and an operator), so
updates take an exclusive ``flock`` on a side file and replace the state file with ``rename``,
which readers never see half-written.

We run as root and the state directory may be shared, so every file here is opened through
:mod:`healthcheck.sdk.safefile`: a symlink, FIFO or device at a state or lock file's name is an
error (one line), never followed or waited on, and the temporary file of a replacement is created
exclusively under an unpredictable name.

Documented in ``docs/sdk.md``; :func:`read_only` is the host's (the agent's dry run), not part of
the SDK.
"""

from __future__ import annotations

import errno
import os
import time

from healthcheck.sdk.safefile import open_regular, read_regular, replace_file
from healthcheck.sdk.text import LOG_LIMIT, one_line

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from collections.abc import Iterator
    from contextlib import AbstractContextManager
    from typing import Any

__all__ = [
    "DEFAULT_STATE_DIR",
    "MAX_STATE_BYTES",
    "StateError",
    "locked_state",
    "read_state",
    "write_state",
]

DEFAULT_STATE_DIR = "/var/lib/node-healthcheck"
MAX_STATE_BYTES = 1 << 20


_read_only = False  # one-way: a dry run writes no state file (see read_only)


def read_only() -> None:
    """From now on no state file, lock file or state directory is written by this process.

    ``healthcheck agent --dry-run`` sets it before any check starts, and there is no way back:
    checks still read their records (a conntrack baseline, a cached token) but what they would
    record is dropped, so a preview cannot move the real agent's baselines.
    """
    global _read_only
    _read_only = True


class StateError(OSError):
    """A state file that cannot be read, locked or written; the message says which and why."""


def _describe(path: str, action: str, exc: OSError) -> StateError:
    reason = exc.strerror or str(exc)
    where = one_line(path, LOG_LIMIT)  # the state directory comes from argv or a config file
    return StateError(f"cannot {action} state file {where}: {reason} (see --state-dir)")


def read_state(path: str) -> dict[str, Any]:
    """The state stored at ``path``; an absent, empty or corrupt file reads as ``{}``.

    Raises :class:`StateError` when ``path`` cannot be read or is not a regular file.
    """
    try:
        data = read_regular(path, MAX_STATE_BYTES + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _describe(path, "read", exc) from None
    if len(data) > MAX_STATE_BYTES:
        return {}
    import json  # here: importing this module (for DEFAULT_STATE_DIR) must not cost json

    try:
        value = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can follow
        return {}
    return value if isinstance(value, dict) else {}


def write_state(path: str, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` atomically (write, fsync, rename, fsync the directory)."""
    if _read_only:
        return
    import json  # here: importing this module (for DEFAULT_STATE_DIR) must not cost json

    directory = os.path.dirname(path) or "."
    try:
        payload = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError) as exc:  # not JSON, or an int past Python's 4300 digits
        raise StateError(
            f"cannot write state file {one_line(path, LOG_LIMIT)}: {one_line(exc, 200)}"
        ) from None
    try:
        os.makedirs(directory, mode=0o755, exist_ok=True)
        replace_file(path, payload, 0o600)
    except OSError as exc:
        raise _describe(path, "write", exc) from None


def locked_state(path: str, wait: float = 5.0) -> AbstractContextManager[dict[str, Any]]:
    """Hold the lock for ``path`` and yield its state as a dict; write it back if it changed.

    After :func:`read_only` it only reads (no lock, nothing written). Waits at most ``wait``
    seconds for another holder, then raises :class:`StateError`.
    """
    # contextlib is imported here, not at the top: a check that only reads state (a cached
    # metadata token) then skips it, ~0.5 ms of a one-shot check (measured interleaved).
    import contextlib

    return contextlib.contextmanager(_locked_state)(path, wait)


def _locked_state(path: str, wait: float) -> Iterator[dict[str, Any]]:
    import fcntl  # with contextlib: only a check that records state pays for it

    if _read_only:
        yield read_state(path)  # no lock: a reader needs none, and the lock file is a write
        return
    lock_path = path + ".lock"
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        lock_fd = open_regular(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _describe(lock_path, "lock", exc) from None
    try:
        give_up = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise _describe(lock_path, "lock", exc) from None
                if time.monotonic() > give_up:
                    where = one_line(path, LOG_LIMIT)
                    raise StateError(
                        f"cannot lock state file {where}: another run holds it"
                    ) from None
                time.sleep(0.02)
        state = read_state(path)  # has imported json
        before = _json_text(state)
        yield state
        if _json_text(state) != before:
            write_state(path, state)
    finally:
        os.close(lock_fd)  # closing the descriptor releases the flock


def _json_text(state: dict[str, Any]) -> str:
    import json  # loaded by read_state already; a dict lookup here

    return json.dumps(state, sort_keys=True)
