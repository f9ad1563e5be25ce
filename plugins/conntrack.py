"""conntrack: is the connection-tracking table close to full, or dropping connections?

Messages and exit codes are those of NPD's network_problem.sh (spec section 5). With
``--check-drops`` it also reports what the script cannot see: the kernel dropping or failing to
insert entries since the previous run.
"""

from __future__ import annotations

import os

from healthcheck import Checker, Condition, Option, Result, hookimpl
from healthcheck.sdk import proc
from healthcheck.sdk.state import DEFAULT_STATE_DIR, locked_state
from healthcheck.sdk.text import LOG_LIMIT, one_line

DROP_COUNTERS = ("drop", "insert_failed", "early_drop")


def _over_threshold(count: int, limit: int, threshold: int) -> bool:
    # network_problem.sh compares with bash integer arithmetic: count > max * 9 / 10
    return count > limit * threshold // 100


def _one_line(exc: Exception) -> str:
    return one_line(exc, LOG_LIMIT)


def _boot_id(proc_root: str) -> str:
    """The boot id, or "" when unreadable: the counters are then compared within "no boot"."""
    try:
        return proc.boot_id(proc_root)
    except OSError:
        return ""


def _read_stats(proc_root: str) -> dict[str, int]:
    try:
        return proc.conntrack_stats_proc(proc_root)
    except proc.CountersMissing:
        if os.path.realpath(proc_root) != "/proc":
            raise  # netlink only sees our own namespace, which is not that proc tree
        return proc.conntrack_stats_netlink()


def _drops_since_last_run(options) -> tuple[dict[str, int], bool]:
    """Growth of each drop counter since the state file's record; ``(growth, first_run)``."""
    stats = _read_stats(options.proc_root)
    current = {name: stats.get(name, 0) for name in DROP_COUNTERS}
    key = os.path.realpath(options.proc_root)
    boot = _boot_id(options.proc_root)
    path = os.path.join(options.state_dir, "conntrack.json")
    with locked_state(path) as state:
        previous = state.get(key)
        state[key] = {"boot_id": boot, "counters": current}
    if not isinstance(previous, dict) or previous.get("boot_id") != boot:
        return {}, True  # first run, or the counters were reset by a reboot
    before = previous.get("counters")
    if not isinstance(before, dict) or not all(
        isinstance(before.get(n, 0), int) and not isinstance(before.get(n, 0), bool)
        for n in DROP_COUNTERS
    ):
        return {}, True  # a record we did not write: start over rather than trust it
    growth = {n: current[n] - before.get(n, 0) for n in DROP_COUNTERS}
    return {n: g for n, g in growth.items() if g > 0}, False


def check(ctx) -> Result:
    opts = ctx.options
    try:
        count, limit = proc.conntrack_usage(opts.proc_root)
    except proc.CountersMissing:
        return Result.unknown(f"conntrack counters not found under {opts.proc_root}/sys/net")
    except (OSError, ValueError) as exc:
        return Result.unknown(f"cannot read conntrack counters: {_one_line(exc)}")
    if _over_threshold(count, limit, opts.threshold):
        usage = Result.problem(
            f"Conntrack table usage over {opts.threshold}%: {count} out of {limit}"
        )
    else:
        usage = Result.ok(f"Conntrack table usage: {count} out of {limit}")
    if not opts.check_drops:
        return usage
    try:
        growth, _first_run = _drops_since_last_run(opts)
    except (OSError, ValueError, ImportError) as exc:
        return Result.unknown(f"cannot read conntrack drop statistics: {_one_line(exc)}")
    if not growth:
        return usage
    drops = ", ".join(f"{name} +{value}" for name, value in growth.items())
    if usage.status != 0:
        return Result.problem(f"{usage.message}; {drops}")
    return Result.problem(f"Conntrack dropping: {drops} ({count} out of {limit})")


def applies() -> str | None:
    try:
        proc.conntrack_usage("/proc")
    except proc.CountersMissing:
        return "nf_conntrack is not loaded"
    except (OSError, ValueError):
        return None  # a read error is worth reporting as UNKNOWN, so run it
    return None


CHECKER = Checker(
    "conntrack",
    description="conntrack table usage against a threshold, and optionally kernel drops",
    check=check,
    condition=Condition("", "ConntrackFull", permanent=False),
    options=[
        Option("proc_root", default="/proc", help="where the kernel's proc tree is mounted"),
        Option(
            "threshold",
            type="int",
            default=90,
            minimum=1,
            maximum=100,
            help="problem when usage exceeds this percentage",
        ),
        Option(
            "check_drops",
            type="bool",
            default=False,
            help="also report drop/insert_failed/early_drop growth since the last run",
        ),
        Option(
            "state_dir",
            default=DEFAULT_STATE_DIR,
            help="where --check-drops keeps the counters of the previous run",
        ),
    ],
    interval=30.0,
    timeout=5.0,
    applies=applies,
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
