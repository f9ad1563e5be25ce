"""systemd units through the ``systemctl`` binary: service uptime and killing a unit's main process.

The binary path is a parameter (containers mount the host's systemctl somewhere, tests put a
recording stand-in there). Every call is an argv list with a timeout (NPD's ``CmdTimeout``, 10 s).

Uptime comes from ``InactiveExitTimestampMonotonic`` (microseconds of CLOCK_MONOTONIC, which a
container shares with its host) rather than from the wall-clock ``InactiveExitTimestamp`` that NPD
parses with the container's own time zone (NPD #439 family). The wall-clock form is only a
fallback for a systemctl too old to print the monotonic one.
"""

from __future__ import annotations

import time

DEFAULT_SYSTEMCTL = "systemctl"
COMMAND_TIMEOUT = 10.0  # NPD's CmdTimeout
UPTIME_PROPERTIES = "InactiveExitTimestampMonotonic,InactiveExitTimestamp"


class SystemdError(Exception):
    """systemd could not answer; the message is one line saying what failed and why."""


def _run(argv: list[str], timeout: float):
    from healthcheck.process import run_program

    result = run_program(argv, timeout=timeout)
    if result.error is not None:
        raise SystemdError(f"systemd not reachable: {result.error}")
    if result.timed_out:
        raise SystemdError(f"systemd not reachable: {' '.join(argv[:3])} timed out")
    if result.returncode != 0:
        detail = " ".join(result.stderr.decode("utf-8", "replace").split())[:200] or "no output"
        what = " ".join(argv[1:3])
        raise SystemdError(f"systemctl {what} failed (exit {result.returncode}): {detail}")
    return result


def show_properties(
    unit: str, properties: str, *, systemctl: str = DEFAULT_SYSTEMCTL, timeout=COMMAND_TIMEOUT
) -> dict[str, str]:
    """``systemctl show UNIT --property=...`` as a dict of the printed ``Name=value`` lines."""
    result = _run([systemctl, "show", unit, f"--property={properties}"], timeout)
    values = {}
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    return values


def _parse_wall_clock(text: str) -> float:
    """``Mon 2024-01-01 10:00:00 UTC`` as epoch seconds; only UTC/GMT or the local zone."""
    parts = text.split()
    if len(parts) != 4:
        raise ValueError(text)
    _, day, clock, zone = parts
    parsed = time.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M:%S")
    if zone in ("UTC", "GMT"):
        import calendar

        return float(calendar.timegm(parsed))
    if zone in time.tzname:
        return time.mktime(parsed)
    # Go would read an unknown abbreviation as UTC and be silently wrong; we refuse instead.
    raise ValueError(f"time zone {zone!r} is neither UTC nor this machine's zone")


def unit_uptime(
    unit: str, *, systemctl: str = DEFAULT_SYSTEMCTL, timeout: float = COMMAND_TIMEOUT
) -> float:
    """Seconds since ``unit`` last left the inactive state (NPD's notion of service uptime).

    Raises :class:`SystemdError` when systemctl cannot be run or fails ("systemd not reachable"),
    or when the unit never started.
    """
    values = show_properties(unit, UPTIME_PROPERTIES, systemctl=systemctl, timeout=timeout)
    monotonic = values.get("InactiveExitTimestampMonotonic", "")
    if monotonic.isdigit():
        if int(monotonic) == 0:
            raise SystemdError(f"unit {unit} has never started (InactiveExitTimestamp is empty)")
        return time.clock_gettime(time.CLOCK_MONOTONIC) - int(monotonic) / 1e6
    wall = values.get("InactiveExitTimestamp", "")
    if not wall or wall == "n/a":
        if "InactiveExitTimestamp" not in values and not monotonic:
            raise SystemdError(f"systemctl show {unit} printed no InactiveExitTimestamp")
        raise SystemdError(f"unit {unit} has never started (InactiveExitTimestamp is empty)")
    try:
        return time.time() - _parse_wall_clock(wall)
    except ValueError as exc:
        raise SystemdError(
            f"cannot parse InactiveExitTimestamp {wall!r} of {unit}: {exc}"
        ) from None


def kill_main(
    unit: str,
    *,
    signal: str | None = None,
    systemctl: str = DEFAULT_SYSTEMCTL,
    timeout: float = COMMAND_TIMEOUT,
) -> list[str]:
    """``systemctl kill --kill-who=main [--signal=SIG] UNIT``; returns the argv it ran."""
    argv = [systemctl, "kill", "--kill-who=main"]
    if signal:
        argv.append(f"--signal={signal}")
    argv.append(unit)
    _run(argv, timeout)
    return argv
