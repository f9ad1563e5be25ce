"""The cloud-assistant plug-in's ``/var/log/host_event.log``, written so its NPD config still works.

Each line is what the plug-in writes (spec: cloud-events.md; note the commas without a space):

    2024-01-08 17:02:01 - WARNING - Ecs event type is: InstanceFailure.Reboot,event status is:
    Executed,action ISO 8601 time is 2023-12-27T11:49:28Z      (one line in the file)

The timestamp is local time, as the plug-in's Python logging writes it. An event is written once
per (id, status). The set already written lives in a state file, updated under its lock while the
lines are appended, so a second concurrent writer waits and then finds nothing new. The log is
opened by name with O_APPEND on every run, so a rotated file is simply started afresh, and every
line is one ``write`` (no interleaving with other appenders).
"""

from __future__ import annotations

import os
import time

DEFAULT_LOG_PATH = "/var/log/host_event.log"
STATE_FILE = "host-event-log.json"
MAX_REMEMBERED = 2000  # (id, status) pairs kept per log file; events are few, ids are unique


class HostLogError(OSError):
    """The log or its state could not be written; the message says which and why."""


def format_line(event, now: float | None = None) -> str:
    """One log line (with its newline) for ``event``, stamped with ``now`` in local time."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    return (
        f"{stamp} - WARNING - Ecs event type is: {event.type},"
        f"event status is: {event.status},action ISO 8601 time is {event.not_before}\n"
    )


def _append(path: str, lines: list[str]) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise HostLogError(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        for line in lines:
            data = line.encode("utf-8", "replace")
            if os.write(fd, data) != len(data):
                raise HostLogError(f"short write to {path}")
    except OSError as exc:
        if isinstance(exc, HostLogError):
            raise
        raise HostLogError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def write_new_events(events, log_path: str, state_dir: str, now: float | None = None) -> int:
    """Append a line for every event whose (id, status) this log has not had; return how many."""
    from healthcheck.state import StateError, locked_state

    state_path = os.path.join(state_dir, STATE_FILE)
    key = os.path.abspath(log_path)
    try:
        with locked_state(state_path, wait=10.0) as state:
            seen = state.get(key)
            seen = [s for s in seen if isinstance(s, str)] if isinstance(seen, list) else []
            known = set(seen)
            fresh = []
            for event in events:
                if event.key() not in known:
                    known.add(event.key())
                    fresh.append(event)
            if not fresh:
                return 0
            _append(log_path, [format_line(e, now) for e in fresh])
            # Written before the state is saved: a crash in between repeats a line, never loses one.
            state[key] = (seen + [e.key() for e in fresh])[-MAX_REMEMBERED:]
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
    from healthcheck.node.metadata.detect import resolve_provider
    from healthcheck.node.metadata.fetch import read_events

    name = resolve_provider(provider, dmi_root)
    reading = read_events(name, endpoint, timeout, state_dir, token_ttl)
    if not reading.ok:
        raise HostLogError(f"cannot read {name} events: {reading.error}")
    return write_new_events(reading.events, log_path, state_dir)
