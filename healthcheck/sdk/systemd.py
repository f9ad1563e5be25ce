"""systemd units through the ``systemctl`` binary: service uptime and killing a unit's main process.

The binary path is a parameter (containers mount the host's systemctl somewhere, tests put a
recording stand-in there). Every call is an argv list with a timeout (NPD's ``CmdTimeout``, 10 s).

Uptime comes from ``InactiveExitTimestampMonotonic`` (microseconds of CLOCK_MONOTONIC, which a
container shares with its host) rather than from the wall-clock ``InactiveExitTimestamp`` that NPD
parses with the container's own time zone (NPD #439 family). The wall-clock form is only a
fallback for a systemctl too old to print the monotonic one.

Unit names come from flags and config files, so every one is checked against systemd's own rules
(:func:`check_unit_name`) before it reaches an argv, and goes after ``--``: a name can be neither
an option (``--host=root@evil`` would make systemctl act on another machine) nor a glob pattern
(``systemctl kill 'kube*'`` would kill every matching unit).

Documented in ``docs/sdk.md``.
"""

from __future__ import annotations

import time

from healthcheck.sdk.text import LOG_LIMIT, one_line

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from healthcheck.sdk.process import ProgramResult

__all__ = [
    "COMMAND_TIMEOUT",
    "DEFAULT_SYSTEMCTL",
    "UNIT_NAME_MAX",
    "SystemdError",
    "check_unit_name",
    "kill_main",
    "show_properties",
    "unit_option",
    "unit_uptime",
]

DEFAULT_SYSTEMCTL = "systemctl"
COMMAND_TIMEOUT = 10.0  # NPD's CmdTimeout
_UPTIME_PROPERTIES = "InactiveExitTimestampMonotonic,InactiveExitTimestamp"
_MAX_USEC_DIGITS = 20  # a uint64 of microseconds


# systemd's unit-name.c: the characters of a unit prefix, the extra one of an instance, the
# length limit (UNIT_NAME_MAX less the NUL) and the unit types.
_UNIT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")
_INSTANCE_CHARS = _UNIT_CHARS | {"@"}
UNIT_NAME_MAX = 255
_UNIT_TYPES = (
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
)


class SystemdError(Exception):
    """systemd could not answer; the message is one line saying what failed and why."""


def check_unit_name(name: str) -> str:
    """``name`` when systemd would take it as one unit name, else ``ValueError`` (one line).

    A bare name is completed with ``.service`` first, as systemctl does. systemd's rules: ASCII
    letters, digits and ``:-_.\\``, an optional ``@instance`` that may also hold ``@``, a known
    unit type after the last dot, at most 255 bytes. Stricter than systemd in one point: a name
    may not start with ``-`` (systemd's only such units are ``-.mount`` and ``-.slice``, never a
    component's service), so it can never be read as an option by any program.
    """
    full = name if name.rpartition(".")[2] in _UNIT_TYPES and "." in name else name + ".service"
    prefix, _, kind = full.rpartition(".")
    base, _, instance = prefix.partition("@")
    valid = (
        len(full) <= UNIT_NAME_MAX
        and not name.startswith("-")
        and kind in _UNIT_TYPES
        and base != ""
        and all(c in _UNIT_CHARS for c in base)
        and all(c in _INSTANCE_CHARS for c in instance)
    )
    if not valid:
        raise ValueError(
            f'invalid unit name "{one_line(name, 40, marker="…")}" '
            "(systemd allows A-Z a-z 0-9 :-_.\\@, up to 255)"
        )
    return name


def unit_option(text: str) -> str:
    """A ``--service`` flag value: empty (the component's default) or a valid unit name."""
    return text if text == "" else check_unit_name(text)


def _run(argv: list[str], timeout: float, what: str) -> ProgramResult:
    """Run systemctl; ``what`` names the call in errors (``show kubelet``)."""
    # subprocess and selectors only when systemctl runs: a component check imports this module
    # for unit_option, and a healthy one never calls systemctl.
    from healthcheck.sdk.process import run_program

    result = run_program(argv, timeout=timeout)
    if result.error is not None:
        raise SystemdError(f"systemd not reachable: {result.error}")
    if result.timed_out:
        raise SystemdError(f"systemd not reachable: {argv[0]} {what} timed out")
    if result.returncode != 0:
        detail = " ".join(one_line(result.stderr.decode("utf-8", "replace"), 400).split())[:200]
        detail = detail or "no output"
        raise SystemdError(f"systemctl {what} failed (exit {result.returncode}): {detail}")
    return result


def _checked(unit: str) -> None:
    try:
        check_unit_name(unit)
    except ValueError as exc:
        raise SystemdError(str(exc)) from None


def show_properties(
    unit: str,
    properties: str,
    *,
    systemctl: str = DEFAULT_SYSTEMCTL,
    timeout: float = COMMAND_TIMEOUT,
) -> dict[str, str]:
    """``systemctl show --property=... -- UNIT`` as a dict of the printed ``Name=value`` lines.

    Raises :class:`SystemdError` for an invalid unit name, before anything runs.
    """
    _checked(unit)
    argv = [systemctl, "show", f"--property={properties}", "--", unit]
    result = _run(argv, timeout, f"show {unit}")
    values: dict[str, str] = {}
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
        import calendar  # only systemd too old for the monotonic timestamp needs it

        return float(calendar.timegm(parsed))
    if zone in time.tzname:
        return time.mktime(parsed)
    # Go would read an unknown abbreviation as UTC and be silently wrong; we refuse instead.
    raise ValueError(f"time zone {zone[:40]!r} is neither UTC nor this machine's zone")


def unit_uptime(
    unit: str, *, systemctl: str = DEFAULT_SYSTEMCTL, timeout: float = COMMAND_TIMEOUT
) -> float:
    """Seconds since ``unit`` last left the inactive state (NPD's notion of service uptime).

    Raises :class:`SystemdError` when systemctl cannot be run or fails ("systemd not reachable"),
    or when the unit never started.
    """
    values = show_properties(unit, _UPTIME_PROPERTIES, systemctl=systemctl, timeout=timeout)
    monotonic = values.get("InactiveExitTimestampMonotonic", "")
    # systemd prints a uint64 in ASCII: "²" or "٣" (str.isdigit) or 400 digits (float overflow)
    # is not one, and falls through to the wall-clock form like any other unreadable value.
    if monotonic.isascii() and monotonic.isdigit() and len(monotonic) <= _MAX_USEC_DIGITS:
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
    except (ValueError, OverflowError) as exc:
        # systemctl's output is echoed into a condition message: bounded, one line.
        raise SystemdError(
            one_line(
                f"cannot parse InactiveExitTimestamp {wall[:80]!r} of {unit}: {exc}", LOG_LIMIT
            )
        ) from None


def kill_main(
    unit: str,
    *,
    signal: str | None = None,
    systemctl: str = DEFAULT_SYSTEMCTL,
    timeout: float = COMMAND_TIMEOUT,
) -> list[str]:
    """``systemctl kill --kill-who=main [--signal=SIG] -- UNIT``; returns the argv it ran.

    Raises :class:`SystemdError` for an invalid unit name, before anything runs.
    """
    _checked(unit)
    argv = [systemctl, "kill", "--kill-who=main"]
    if signal:
        argv.append(f"--signal={signal}")
    argv += ["--", unit]
    _run(argv, timeout, "kill --kill-who=main")
    return argv
