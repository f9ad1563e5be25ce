"""The ``native`` journal backend: systemd-python's low-level ``_Reader``.

Private: :mod:`healthcheck.sdk.journal` picks the backend (documented in ``docs/sdk.md``). The
low-level reader seeks by timestamp and filters by field inside libsystemd, and reads only the
fields asked for (the high-level ``Reader`` converts every field of every entry and is about ten
times slower). Importing this module never fails: :data:`AVAILABLE` says whether systemd-python
is installed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from healthcheck.sdk.journal import Entry, JournalError, _decode, _usable, _Window

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

try:
    from systemd import _reader  # type: ignore[import-untyped, unused-ignore]
except ImportError:
    AVAILABLE = False
else:
    AVAILABLE = True
# libsystemd's default: a field larger than this is cut, as journalctl cuts it.
DATA_THRESHOLD = 65536


def open_reader(files: list[str] | None, warn: Callable[[str], None] | None) -> Any:
    """A reader of ``files`` (``None``: the system journal), or ``None`` for no files.

    A file the library cannot open is skipped (``warn`` hears of it) unless every file fails.
    """
    if not AVAILABLE:
        raise JournalError("systemd-python is not installed (pip install systemd-python)")

    def open_files(paths: list[str]) -> Any:
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


def _position(reader: Any, window: _Window) -> tuple[int | float, int | float]:
    """Apply the matches and seek to the window start; the window's bounds in microseconds."""
    reader.data_threshold = DATA_THRESHOLD
    for group in window.matches:
        for name, value in group.items():
            reader.add_match(f"{name}={value}")
        reader.add_disjunction()
    low: int | float
    if window.since is None:
        reader.seek_head()
        low = -1
    else:
        low = int(window.since * 1_000_000)
        reader.seek_realtime(low)
    high = float("inf") if window.until is None else int(window.until * 1_000_000)
    return low, high


def read_entries(reader: Any, window: _Window, fields: Sequence[str]) -> Iterator[Entry]:
    """The window's entries from ``reader`` (closed at the end, or when the consumer stops)."""
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


def read_messages(reader: Any, window: _Window) -> list[bytes]:
    """The raw MESSAGE bytes of the window's entries from ``reader``, which is closed."""
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
