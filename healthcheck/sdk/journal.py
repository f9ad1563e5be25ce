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

Documented in ``docs/sdk.md``. This module holds the window and the file discovery; each backend
is a private module (``_journal_native``, ``_journalctl``) imported only when it reads.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence

__all__ = [
    "BACKENDS",
    "Entry",
    "JournalError",
    "journal_files",
    "npd_log_path_error",
    "read_entries",
    "read_messages",
]

BACKENDS = ("auto", "native", "journalctl")
_FIELD_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class JournalError(Exception):
    """The journal cannot be read: missing directory, corrupt files, no backend. One line."""


class Entry:
    """One journal entry: realtime (epoch seconds), its MESSAGE and any other requested fields."""

    __slots__ = ("fields", "message", "realtime")

    def __init__(self, realtime: float, message: str, fields: dict[str, str] | None = None) -> None:
        self.realtime = realtime
        self.message = message
        self.fields = fields if fields is not None else {}

    def __repr__(self) -> str:
        return f"Entry({self.realtime!r}, {self.message!r}, {self.fields!r})"


def _decode(value: bytes) -> str:
    """A field's bytes as text, undecodable bytes replaced (both backends agree on it)."""
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
    files: list[str] = []
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
    from healthcheck.sdk.pflag import go_quote  # only a path that is no directory pays for it

    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        return f"failed to stat the log path {go_quote(path)}: stat {path}: {_go_errno(exc)}"
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


def _usable(
    files: list[str], probe: Callable[[str], str | None], warn: Callable[[str], None] | None
) -> list[str]:
    """The files ``probe`` can open; JournalError if there were files and none is usable."""
    good: list[str] = []
    first_error: str | None = None
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
        raise JournalError(first_error or "no readable journal file")
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
    # Each backend's module is imported only when it reads: the native one never pays for
    # subprocess, json and tempfile, the journalctl one never for libsystemd.
    if window.backend == "native":
        from healthcheck.sdk import _journal_native as native

        return native.read_entries(native.open_reader(window.files, warn), window, tuple(fields))
    from healthcheck.sdk import _journalctl as ctl

    proc, stderr = ctl.start(window.journalctl_argv(fields))
    return ctl.read_entries(proc, stderr, since, until, tuple(fields))


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
    if window.backend == "native":  # the backend's module only when it reads: see read_entries
        from healthcheck.sdk import _journal_native as native

        messages = native.read_messages(native.open_reader(window.files, warn), window)
    else:
        from healthcheck.sdk import _journalctl as ctl

        proc, stderr = ctl.start(window.journalctl_argv(()))
        entries = ctl.read_entries(proc, stderr, since, until, ())
        messages = [entry.message.encode() for entry in entries]
    return _valid_utf8(messages)


def _valid_utf8(messages: list[bytes]) -> list[bytes]:
    try:
        b"".join(messages).decode()  # one C pass; almost every journal is valid UTF-8
    except UnicodeDecodeError:
        return [m.decode("utf-8", "replace").encode() for m in messages]
    return messages


class _Window:
    """What both readers need: the checked arguments, the backend, and the files to open.

    Shared with the private backend modules."""

    __slots__ = ("backend", "empty", "files", "journalctl", "matches", "since", "until")

    def __init__(
        self,
        directory: str | None,
        matches: Sequence[Mapping[str, str]],
        since: float | None,
        until: float | None,
        backend: str,
        journalctl: str,
        warn: Callable[[str], None] | None,
    ) -> None:
        if backend not in BACKENDS:
            raise JournalError(f"unknown journal backend {backend!r} (use {', '.join(BACKENDS)})")
        for group in matches:
            for name in group:
                if not _FIELD_NAME_CHARS.issuperset(name) or not name or name[0].isdigit():
                    raise JournalError(f"invalid journal field name {name!r}")
        if backend == "auto":
            from healthcheck.sdk import _journal_native  # the backend that reads when it can

            backend = "native" if _journal_native.AVAILABLE else "journalctl"
        self.backend, self.journalctl = backend, journalctl
        self.matches, self.since, self.until = matches, since, until
        self.files: list[str] | None = journal_files(directory) if directory is not None else None
        # A start in the future is an empty window; journalctl would refuse it.
        self.empty = since is not None and until is not None and since > until
        if backend == "journalctl" and self.files and not self.empty:
            self.files = _readable_by_journalctl(journalctl, self.files, warn)
        if backend == "journalctl" and self.files == []:
            self.empty = True  # without --file, journalctl would read the system journal

    def journalctl_argv(self, fields: Sequence[str]) -> list[str]:
        """The journalctl command line that prints this window with ``fields``."""
        from healthcheck.sdk import _journalctl  # only this backend calls it: already imported

        return _journalctl.argv_for(
            self.journalctl, self.files, self.matches, self.since, self.until, fields
        )


def _readable_by_journalctl(
    journalctl: str, files: list[str], warn: Callable[[str], None] | None
) -> list[str]:
    """``files`` less those journalctl cannot open (``warn`` hears of each)."""
    from healthcheck.sdk import _journalctl  # the journalctl backend is the one reading

    # One journalctl for all files; one per file only to find out which is unreadable.
    if _journalctl.probe(journalctl, files) is None:
        return files
    return _usable(files, lambda path: _journalctl.probe(journalctl, [path]), warn)
