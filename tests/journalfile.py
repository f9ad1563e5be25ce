"""Write REAL journal files for tests and benchmarks.

Entries are serialised in the journal export format
(https://systemd.io/JOURNAL_EXPORT_FORMATS/) and piped to ``systemd-journal-remote``, which writes
a genuine ``.journal`` file that journalctl, systemd-python and NPD all read. Fields whose value
contains a newline (multi-line messages) use the export format's binary encoding.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
from collections.abc import Iterable, Mapping

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
DEFAULT_BOOT_ID = uuid.UUID("0123456789abcdef0123456789abcdef").hex


class Record:
    """One journal entry to write: a realtime timestamp (epoch seconds), a message, fields.

    ``identifier`` becomes SYSLOG_IDENTIFIER, ``unit`` becomes _SYSTEMD_UNIT; ``fields`` are
    written verbatim (e.g. ``{"UNIT": "kubelet.service", "PRIORITY": "6"}``).
    """

    __slots__ = ("fields", "identifier", "message", "realtime", "unit")

    def __init__(
        self,
        realtime: float,
        message: str | bytes,
        identifier: str | None = None,
        unit: str | None = None,
        fields: Mapping[str, str | bytes] | None = None,
    ) -> None:
        self.realtime = realtime
        self.message = message
        self.identifier = identifier
        self.unit = unit
        self.fields = dict(fields or {})


def _field(name: str, value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    if b"\n" in data:
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


def export_entry(
    record: Record, *, boot_id: str = DEFAULT_BOOT_ID, boot_time: float = 0.0
) -> bytes:
    """One entry in journal export format (terminated by the blank line)."""
    usec = round(record.realtime * 1_000_000)
    mono = max(0, usec - round(boot_time * 1_000_000))
    parts = [
        b"__REALTIME_TIMESTAMP=%d\n" % usec,
        b"__MONOTONIC_TIMESTAMP=%d\n" % mono,
        _field("_BOOT_ID", boot_id),
        _field("MESSAGE", record.message),
    ]
    if record.identifier is not None:
        parts.append(_field("SYSLOG_IDENTIFIER", record.identifier))
    if record.unit is not None:
        parts.append(_field("_SYSTEMD_UNIT", record.unit))
    parts.extend(_field(k, v) for k, v in record.fields.items())
    parts.append(b"\n")
    return b"".join(parts)


def write_journal(
    directory: str | os.PathLike,
    records: Iterable[Record],
    *,
    name: str = "test.journal",
    boot_time: float = 0.0,
    journal_remote: str = JOURNAL_REMOTE,
    batch: int = 5000,
) -> str:
    """Write ``records`` into ``directory/name`` through systemd-journal-remote; return the path.

    Records must be in time order (journald appends in time order too). ``boot_time`` sets the
    monotonic timestamps relative to a boot at that epoch second.
    """
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(os.fspath(directory), name)
    proc = subprocess.Popen(
        [journal_remote, "-o", path, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    chunk: list[bytes] = []
    try:
        for record in records:
            chunk.append(export_entry(record, boot_time=boot_time))
            if len(chunk) >= batch:
                proc.stdin.write(b"".join(chunk))
                chunk.clear()
        proc.stdin.write(b"".join(chunk))
    finally:
        proc.stdin.close()
    stderr = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise RuntimeError(
            f"systemd-journal-remote failed ({proc.returncode}): {stderr.decode(errors='replace')}"
        )
    return path
