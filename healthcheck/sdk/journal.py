"""Read journald entries in a time window, filtered inside the journal library.

Two backends read the same files the same way:

- ``native``: systemd-python's low-level ``_Reader``. It seeks by timestamp and filters by field
  inside libsystemd, and reads only the fields asked for (the high-level ``Reader`` converts every
  field of every entry and is about ten times slower).
- ``journalctl``: ``journalctl --output=json`` as an argv child process in its own process group,
  streamed line by line with a cap on the line length, killed and reaped when the consumer stops
  early. Used when systemd-python is not importable, or on request.

Both seek to ``since`` and apply ``matches`` in libsystemd, so the cost follows the window, not the
size of the journal. Both open the journal files of a given directory explicitly (the files in it
and in its machine-id subdirectories, as journald lays them out): an unreadable file is skipped,
as journalctl does, but a directory whose journal files are all unreadable is a
:class:`JournalError`, not an empty journal.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence

BACKENDS = ("auto", "native", "journalctl")
# journalctl's JSON escapes each byte of a field as at most 6 characters; 64 KiB of message
# (libsystemd's default data threshold) therefore fits in a line of this many bytes.
MAX_LINE_BYTES = 6 * 65536 + 4096
DATA_THRESHOLD = 65536
_STDERR_LIMIT = 4096
_FIELD_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class JournalError(Exception):
    """The journal cannot be read: missing directory, corrupt files, no backend. One line."""


class Entry:
    """One journal entry: realtime (epoch seconds), its MESSAGE and any other requested fields."""

    __slots__ = ("fields", "message", "realtime")

    def __init__(self, realtime: float, message: str, fields: dict | None = None) -> None:
        self.realtime = realtime
        self.message = message
        self.fields = fields if fields is not None else {}

    def __repr__(self) -> str:
        return f"Entry({self.realtime!r}, {self.message!r}, {self.fields!r})"


def _decode(value: bytes) -> str:
    return value.decode("utf-8", errors="replace")


def journal_files(directory: str) -> list[str]:
    """The journal files sd_journal_open_directory would read in ``directory``.

    Raises :class:`JournalError` when the directory is missing or unreadable.
    """
    try:
        names = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise JournalError(f"journal directory {directory} does not exist") from None
    except NotADirectoryError:
        raise JournalError(f"journal path {directory} is not a directory") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal directory {directory}: {exc.strerror}") from None
    files = []
    for entry in names:
        if entry.is_file() and entry.name.endswith((".journal", ".journal~")):
            files.append(entry.path)
        elif entry.is_dir() and _is_machine_id(entry.name):
            try:
                sub = sorted(os.scandir(entry.path), key=lambda e: e.name)
            except OSError:
                continue  # journalctl skips an unreadable subdirectory too
            files.extend(
                e.path for e in sub if e.is_file() and e.name.endswith((".journal", ".journal~"))
            )
    return files


def npd_log_path_error(path: str) -> str | None:
    """Why NPD's journald watcher cannot open ``path``, in its words; None when it can (or the
    path is empty: the system journal). ``failed to stat the log path "/x": stat /x: no such
    file or directory``, or for a path that is not a directory, sd_journal_open_directory's."""
    if not path:
        return None
    from healthcheck.sdk.pflag import go_quote

    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        return f"failed to stat the log path {go_quote(path)}: stat {path}: {_go_errno(exc)}"
    import stat

    if not stat.S_ISDIR(info.st_mode):
        quoted = go_quote(path)
        return (
            f"failed to create journal client from path {quoted}: "
            f"failed to open journal in directory {quoted}: not a directory"
        )
    return None


def _go_errno(exc: Exception) -> str:
    """An OS error as Go's syscall.Errno prints it: strerror with a lower-case first letter."""
    errno = getattr(exc, "errno", None)
    if errno is None:
        return "invalid argument"  # a NUL byte in the path: Go's EINVAL
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]


def _is_machine_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _usable(files: list[str], probe: Callable[[str], str | None], warn) -> list[str]:
    """The files ``probe`` can open; JournalError if there were files and none is usable."""
    good, first_error = [], None
    for path in files:
        error = probe(path)
        if error is None:
            good.append(path)
            continue
        described = _describe_failure(path, error)
        first_error = first_error or described
        if warn is not None:
            warn(f"skipping {described}")
    if files and not good:
        raise JournalError(first_error)
    return good


def _describe_failure(path: str, reason: str) -> str:
    # libsystemd reports a damaged file as EBADMSG, ENODATA or EPROTONOSUPPORT; an operator
    # needs to tell that apart from missing privileges (journal files are mode 0640).
    if "ermission denied" in reason or "not permitted" in reason:
        return f"permission denied reading journal file {path} (run as root or in group adm)"
    return f"corrupt journal file {path}: {reason}"


def read_entries(
    *,
    directory: str | None = None,
    matches: Sequence[Mapping[str, str]] = (),
    since: float | None = None,
    until: float | None = None,
    fields: Sequence[str] = (),
    backend: str = "auto",
    journalctl: str = "journalctl",
    warn: Callable[[str], None] | None = None,
) -> Iterator[Entry]:
    """Entries in time order from ``since`` (inclusive) up to the first entry newer than ``until``.

    ``directory`` is a journal directory (``None`` = the system journal). ``matches`` is an OR of
    AND-groups of ``FIELD: value`` pairs, applied inside libsystemd. ``fields`` fills
    :attr:`Entry.fields` (a missing field is absent from the dict). ``warn`` receives one line per
    unreadable file that was skipped. Raises :class:`JournalError` before the first entry when the
    journal cannot be opened.
    """
    window = _Window(directory, matches, since, until, backend, journalctl, warn)
    if window.empty:
        return iter(())
    if window.backend == "native":
        reader = _open_native(window.files, warn)
        return _read_native(reader, window, tuple(fields))
    proc, stderr = _start_journalctl(window.journalctl_argv(fields))
    return _read_journalctl(proc, stderr, since, until, tuple(fields))


def read_messages(
    *,
    directory: str | None = None,
    matches: Sequence[Mapping[str, str]] = (),
    since: float | None = None,
    until: float | None = None,
    backend: str = "auto",
    journalctl: str = "journalctl",
    warn: Callable[[str], None] | None = None,
) -> list[bytes]:
    """The MESSAGE of each entry of the window, as UTF-8 bytes (``b""`` where it has none).

    The same window, matches and errors as :func:`read_entries`, without an :class:`Entry` per
    entry: this is what a check that only matches messages needs, and its loop is the one-shot
    checks' hot path (one entry per iteration, nothing else). Bytes that are not UTF-8 are
    replaced by U+FFFD, as journalctl's JSON and the text API do, so both backends agree.
    """
    window = _Window(directory, matches, since, until, backend, journalctl, warn)
    if window.empty:
        return []
    if window.backend == "native":
        messages = _native_messages(_open_native(window.files, warn), window)
    else:
        proc, stderr = _start_journalctl(window.journalctl_argv(()))
        entries = _read_journalctl(proc, stderr, since, until, ())
        messages = [entry.message.encode() for entry in entries]
    return _valid_utf8(messages)


def _valid_utf8(messages: list[bytes]) -> list[bytes]:
    try:
        b"".join(messages).decode()  # one C pass; almost every journal is valid UTF-8
    except UnicodeDecodeError:
        return [m.decode("utf-8", "replace").encode() for m in messages]
    return messages


class _Window:
    """What both readers need: the checked arguments, the backend, and the files to open."""

    __slots__ = ("backend", "empty", "files", "journalctl", "matches", "since", "until")

    def __init__(self, directory, matches, since, until, backend, journalctl, warn) -> None:
        if backend not in BACKENDS:
            raise JournalError(f"unknown journal backend {backend!r} (use {', '.join(BACKENDS)})")
        for group in matches:
            for name in group:
                if not _FIELD_NAME_CHARS.issuperset(name) or not name or name[0].isdigit():
                    raise JournalError(f"invalid journal field name {name!r}")
        if backend == "auto":
            try:
                from systemd import _reader  # noqa: F401
            except ImportError:
                backend = "journalctl"
            else:
                backend = "native"
        self.backend, self.journalctl = backend, journalctl
        self.matches, self.since, self.until = matches, since, until
        self.files = journal_files(directory) if directory is not None else None
        # A start in the future is an empty window; journalctl would refuse it.
        self.empty = since is not None and until is not None and since > until
        # One journalctl for all files; one per file only to find out which is unreadable.
        if (
            backend == "journalctl"
            and self.files
            and not self.empty
            and _probe_journalctl(journalctl, self.files) is not None
        ):
            probe = lambda f: _probe_journalctl(journalctl, [f])  # noqa: E731
            self.files = _usable(self.files, probe, warn)
        if backend == "journalctl" and self.files == []:
            self.empty = True  # without --file, journalctl would read the system journal

    def journalctl_argv(self, fields) -> list[str]:
        return _journalctl_argv(
            self.journalctl, self.files, self.matches, self.since, self.until, fields
        )


# ------------------------------------------------------------------------------------- native


def _open_native(files: list[str] | None, warn):
    try:
        from systemd import _reader
    except ImportError:
        raise JournalError("systemd-python is not installed (pip install systemd-python)") from None

    def open_files(paths: list[str]):
        return _reader._Reader(0, None, paths)

    if files is None:
        try:
            return _reader._Reader(_reader.LOCAL_ONLY)
        except OSError as exc:
            raise JournalError(f"cannot open the system journal: {exc.strerror or exc}") from None
    if not files:
        return None  # an empty directory is an empty journal
    try:
        return open_files(files)
    except OSError:
        pass  # find out which file it is, and read the others

    def probe(path: str) -> str | None:
        try:
            open_files([path]).close()
        except OSError as exc:
            return exc.strerror or str(exc)
        return None

    return open_files(_usable(files, probe, warn))


def _position(reader, window: _Window) -> tuple[int | float, int | float]:
    """Apply the matches and seek to the window start; the window's bounds in microseconds."""
    reader.data_threshold = DATA_THRESHOLD
    for group in window.matches:
        for name, value in group.items():
            reader.add_match(f"{name}={value}")
        reader.add_disjunction()
    if window.since is None:
        reader.seek_head()
        low = -1
    else:
        low = int(window.since * 1_000_000)
        reader.seek_realtime(low)
    high = float("inf") if window.until is None else int(window.until * 1_000_000)
    return low, high


def _read_native(reader, window: _Window, fields) -> Iterator[Entry]:
    if reader is None:
        return
    try:
        low, high = _position(reader, window)
        # Bound methods in locals: this loop runs once per entry in the window.
        get, get_realtime, next_entry = reader._get, reader._get_realtime, reader._next
        while next_entry():
            realtime = get_realtime()
            if realtime < low:
                continue  # entries of another boot interleaved before the seek point
            if realtime > high:
                return
            try:
                message = get("MESSAGE").decode("utf-8", "replace")
            except KeyError:
                message = ""
            extra = {}
            for name in fields:
                with contextlib.suppress(KeyError):
                    extra[name] = _decode(get(name))
            yield Entry(realtime / 1_000_000, message, extra)
    except OSError as exc:
        raise JournalError(f"cannot read the journal: {exc.strerror or exc}") from None
    finally:
        reader.close()


def _native_messages(reader, window: _Window) -> list[bytes]:
    if reader is None:
        return []
    messages: list[bytes] = []
    append = messages.append
    try:
        low, high = _position(reader, window)
        get, get_realtime, next_entry = reader._get, reader._get_realtime, reader._next
        while next_entry():
            realtime = get_realtime()
            if realtime < low:
                continue  # entries of another boot interleaved before the seek point
            if realtime > high:
                break
            try:
                append(get("MESSAGE"))
            except KeyError:
                append(b"")
    except OSError as exc:
        raise JournalError(f"cannot read the journal: {exc.strerror or exc}") from None
    finally:
        reader.close()
    return messages


# --------------------------------------------------------------------------------- journalctl


def _probe_journalctl(journalctl: str, paths: list[str]) -> str | None:
    """None when journalctl opens every file of ``paths``, else its reason."""
    from healthcheck.sdk.process import run_program

    argv = [journalctl, *(f"--file={p}" for p in paths), "--lines=0", "--quiet"]
    result = run_program(argv, timeout=10)
    if result.error:
        raise JournalError(result.error)
    if result.returncode == 0:
        return None
    text = _decode(result.stderr).strip().splitlines()
    reason = text[-1] if text else f"exit status {result.returncode}"
    return reason.removeprefix("Failed to open files: ")


def _journalctl_argv(journalctl, files, matches, since, until, fields) -> list[str]:
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


def _json_value(value) -> str | None:
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


def _start_journalctl(argv):
    import subprocess
    import tempfile

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


def _read_journalctl(proc, stderr, since, until, fields) -> Iterator[Entry]:
    import json
    import signal

    since_us = None if since is None else int(since * 1_000_000)
    until_us = None if until is None else int(until * 1_000_000)
    finished = False
    try:
        out = proc.stdout
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
        proc.stdout.close()
        returncode = proc.wait()
        stderr.seek(0)
        err = _decode(stderr.read(_STDERR_LIMIT)).strip()
        stderr.close()
    if finished and returncode not in (0, None):
        lines = err.splitlines()
        reason = lines[-1] if lines else f"exit status {returncode}"
        raise JournalError(f"journalctl failed: {reason}")
