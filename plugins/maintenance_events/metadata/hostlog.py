"""The cloud-assistant plug-in's ``/var/log/host_event.log``, written so its NPD config still works.

Each line is what the plug-in writes (spec: cloud-events.md; note the commas without a space):

    2024-01-08 17:02:01 - WARNING - Ecs event type is: InstanceFailure.Reboot,event status is:
    Executed,action ISO 8601 time is 2023-12-27T11:49:28Z      (one line in the file)

The timestamp is local time, as the plug-in's Python logging writes it. An event is written once
per (id, status). The set already written lives in a state file, updated under its lock while the
lines are appended, so a second concurrent writer waits and then finds nothing new. The log is
opened by name with O_APPEND on every run, so a rotated file is simply started afresh.

The log is written as root into a directory others may write to, so it is opened with
O_NOFOLLOW and O_NONBLOCK and must be a regular file (a link, FIFO or device at its name is an
error, never followed or waited on), and all new lines go out in one ``write``: a short write on a
full disk is truncated back, so no fragment merges with the next line
(:mod:`healthcheck.sdk.safefile`).

De-duplication covers every event of the current reply, however many: the record keeps a 64-bit
digest of each (id, status) the server reports now, plus the :data:`MAX_GONE` most recent ones it
no longer reports (an event that drops out of one reply and comes back is not written twice). The
reply is at most 1 MiB, so the record is bounded too (16 bytes per event).
"""

from __future__ import annotations

import os
import time

DEFAULT_LOG_PATH = "/var/log/host_event.log"
STATE_FILE = "host-event-log.json"
MAX_GONE = 2000  # digests of events no longer reported, kept per log file
DIGEST_CHARS = 16  # hex characters of one (id, status) digest: 64 bits
FIELD_BYTES = 120  # a type, status or time in a log line; real ones are under 40


class HostLogError(OSError):
    """The log or its state could not be written; the message says which and why."""


def _field(value: str) -> str:
    """A metadata field as it may appear in a line: one line, bounded, no field separator."""
    from healthcheck.sdk.text import one_line

    return one_line(value, FIELD_BYTES).replace(",", ";")


def format_line(event, now: float | None = None) -> str:
    """One log line (with its newline) for ``event``, stamped with ``now`` in local time."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return (
        f"{stamp} - WARNING - Ecs event type is: {_field(event.type)},"
        f"event status is: {_field(event.status)},"
        f"action ISO 8601 time is {_field(event.not_before)}\n"
    )


def _where(path: str) -> str:
    from healthcheck.sdk.text import LOG_LIMIT, one_line

    return one_line(path, LOG_LIMIT)


def _append(path: str, lines: list[str]) -> None:
    from healthcheck.sdk.safefile import append_whole, open_append

    try:
        fd = open_append(path)
    except OSError as exc:
        raise HostLogError(f"cannot open {_where(path)}: {exc.strerror or exc}") from None
    try:
        append_whole(fd, "".join(lines).encode("utf-8", "replace"))
    except OSError as exc:
        raise HostLogError(f"cannot write {_where(path)}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def digest(key: str) -> str:
    """The 64-bit digest (16 hex characters) the record keeps for an event's (id, status)."""
    import hashlib

    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _remembered(value) -> list[str]:
    """The digests of a record: a string of concatenated digests, or the earlier form, a list of
    "id<TAB>status" keys."""
    if isinstance(value, str):
        size = DIGEST_CHARS
        return [value[i : i + size] for i in range(0, len(value) - size + 1, size)]
    if isinstance(value, list):
        return [digest(s) for s in value if isinstance(s, str)]
    return []


def write_new_events(events, log_path: str, state_dir: str, now: float | None = None) -> int:
    """Append a line for every event whose (id, status) this log has not had; return how many."""
    from healthcheck.sdk.state import StateError, locked_state

    state_path = os.path.join(state_dir, STATE_FILE)
    key = os.path.abspath(log_path)
    try:
        with locked_state(state_path, wait=10.0) as state:
            seen = _remembered(state.get(key))
            known = set(seen)
            current: dict[str, None] = {}  # reply order, each digest once
            fresh = []
            for event in events:
                mark = digest(event.key())
                if mark not in current:
                    current[mark] = None
                    if mark not in known:
                        fresh.append(event)
            gone = [mark for mark in seen if mark not in current][-MAX_GONE:]
            record = "".join(gone) + "".join(current)
            if fresh:
                _append(log_path, [format_line(e, now) for e in fresh])
            # Saved after the append: a crash in between repeats a line, never loses one.
            if record != state.get(key):
                state[key] = record
    except StateError as exc:
        raise HostLogError(str(exc)) from None
    return len(fresh)


def write_events_from(
    provider: str,
    endpoint: str | None,
    timeout: float,
    state_dir: str,
    token_ttl: int,
    log_path: str,
    dmi_root: str,
) -> int:
    """Read the events of ``provider`` (``auto``: from DMI) and append the new ones.

    Raises ``LookupError`` for an unknown provider, :class:`HostLogError` when the metadata server
    cannot be read or the log cannot be written.
    """
    from healthcheck_plugins.maintenance_events.metadata.detect import resolve_provider
    from healthcheck_plugins.maintenance_events.metadata.fetch import read_events

    name = resolve_provider(provider, dmi_root)
    reading = read_events(name, endpoint, timeout, state_dir, token_ttl)
    if not reading.ok:
        raise HostLogError(f"cannot read {name} events: {reading.error}")
    return write_new_events(reading.events, log_path, state_dir)
