"""Best-effort repair as shared policy, for any checker that declares a :class:`Repair`.

The runner calls :func:`apply` after a check returns PROBLEM. A repair runs only when all hold:

1. ``--enable-repair`` is true (NPD's default);
2. the repaired service has been up **strictly longer** than ``--cooldown-time`` (NPD);
3. no repair of the same target was recorded within the last ``--cooldown-time`` (beyond NPD: a
   stale uptime reading right after a kill cannot cause a second kill, NPD #548). The record is a
   small state file under ``--state-dir``, updated under a lock (two overlapping invocations
   cannot both repair) and replaced atomically. It is measured on CLOCK_BOOTTIME within one boot
   (boot id), so wall-clock jumps do not matter and a reboot clears it;
4. ``--dry-run-repair`` is false and the process is not in a dry run (:func:`dry_run_only`,
   which ``healthcheck agent --dry-run`` sets before any check starts); otherwise the policy
   says what it would do (cooldowns included) and changes nothing: no action, no state file.

:func:`apply` is the only caller of :attr:`Repair.action`, so this is the one place where a
repair is allowed or refused.

Repair never changes the check's result, and its failures are only logged (stderr, which NPD
writes to its own log); the protocol line on stdout stays the checker's.

Documented in ``docs/sdk.md``: :class:`Repair`, :data:`REPAIR_OPTIONS` and :func:`state_path`.
:func:`apply`, :func:`dry_run_only` and :class:`Preview` are the host's (the runner and the
agent's dry run), not part of the SDK.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time

from healthcheck._declaration import Option
from healthcheck.sdk.duration import format_duration
from healthcheck.sdk.state import DEFAULT_STATE_DIR
from healthcheck.sdk.text import LOG_LIMIT, one_line

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from healthcheck._declaration import CheckContext

__all__ = ["DEFAULT_COOLDOWN", "REPAIR_OPTIONS", "Repair", "state_path"]

# The shared policy's default: repair only a service up longer than this, at most once per it.
DEFAULT_COOLDOWN = 120.0

REPAIR_OPTIONS = (
    Option(
        "enable_repair",
        type="bool",
        default=True,
        help="try a repair when the check finds a problem",
    ),
    Option(
        "cooldown_time",
        type="duration",
        default=DEFAULT_COOLDOWN,
        minimum=0,
        help="repair only a service up longer than this, and at most once per this period",
    ),
    Option(
        "dry_run_repair",
        type="bool",
        default=False,
        help="log the repair that would run instead of running it",
    ),
    Option(
        "state_dir",
        default=DEFAULT_STATE_DIR,
        help="where the time of the last repair is kept",
    ),
)


class Repair:
    """A checker's repair, as the shared policy needs it.

    ``action(ctx)`` does the repair and raises on failure; ``uptime(ctx)`` returns the seconds the
    repaired service has been up (raises when unknown); ``target(ctx)`` names what is repaired
    (the rate-limit key, e.g. the systemd unit); ``describe(ctx)`` says in one line what
    ``action`` would do (for logs and ``--dry-run-repair``).
    """

    __slots__ = ("action", "describe", "target", "uptime")

    def __init__(
        self,
        action: Callable[[CheckContext], object],
        *,
        uptime: Callable[[CheckContext], float],
        target: Callable[[CheckContext], str],
        describe: Callable[[CheckContext], str],
    ) -> None:
        self.action = action
        self.uptime = uptime
        self.target = target
        self.describe = describe


class Preview:
    """What the policy would do about one PROBLEM in a dry run; nothing was run or recorded.

    ``would_run`` says whether the policy would have run ``action`` now; ``reason`` says why
    or why not, in one line. ``action`` and ``target`` come from the checker.
    """

    __slots__ = ("action", "checker", "reason", "target", "would_run")

    def __init__(
        self, checker: str, target: str, action: str, would_run: bool, reason: str
    ) -> None:
        self.checker = checker
        self.target = target
        self.action = action
        self.would_run = would_run
        self.reason = reason


_dry_run_lock = threading.Lock()
_dry_run = False  # one-way: once set, no repair action runs in this process again
_preview_sinks: list[Callable[[Preview], object]] = []


def dry_run_only(sink: Callable[[Preview], object] | None = None) -> None:
    """From now on no repair action runs in this process: the policy only says what it would.

    There is deliberately no way back: a dry run sets this before any check starts, so no
    checker option (``enable_repair``, ``dry_run_repair: false``) or config can undo it.
    ``sink(preview)``, when given, is called with a :class:`Preview` for every PROBLEM whose
    checker declares a repair (from the check's thread; the sink must be thread-safe).
    """
    global _dry_run
    with _dry_run_lock:
        _dry_run = True
        if sink is not None:
            _preview_sinks.append(sink)


class _PluginFailed(Exception):
    """A checker's repair callback raised; ``str()`` is the one-line reason."""


def _reason(exc: BaseException) -> str:
    """Why a callback ended, in one bounded line: "exited (code 3)" for ``sys.exit()``."""
    if isinstance(exc, SystemExit):
        return one_line(f"exited (code {exc.code})", LOG_LIMIT)
    if isinstance(exc, _PluginFailed):
        return str(exc)
    try:
        text = one_line(str(exc)[: LOG_LIMIT * 4], LOG_LIMIT)
    except Exception:  # a plugin's exception whose __str__ fails
        text = ""
    if isinstance(exc, Exception) and text:
        return text  # as before: a plugin's own error message says what failed
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(callback: Callable[[CheckContext], Any], ctx: CheckContext) -> Any:
    """``callback(ctx)``, a checker's: any exception but KeyboardInterrupt (``sys.exit()``
    included) becomes :class:`_PluginFailed`, so the check's result is never lost to it."""
    try:
        return callback(ctx)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        raise _PluginFailed(_reason(exc)) from None


def _text(callback: Callable[[CheckContext], object], ctx: CheckContext) -> str:
    """A checker's ``describe``/``target`` answer as one bounded line."""
    return one_line(_call(lambda c: str(callback(c)), ctx), LOG_LIMIT)


def _log(checker: str, message: str) -> None:
    # A checker's describe() and its errors are a plugin's text: one bounded line.
    print(one_line(f"{checker}: {message}", LOG_LIMIT), file=sys.stderr, flush=True)


def _boot_id() -> str:
    """This boot's id, or "" when unreadable (records then compare within "no boot")."""
    # Only a repair that is due reads it; a component check imports this module at start.
    from healthcheck.sdk.proc import boot_id

    try:
        return boot_id()
    except OSError:
        return ""


def state_path(state_dir: str, checker: str) -> str:
    """The state file of ``checker``'s repairs."""
    return os.path.join(state_dir, f"repair-{checker}.json")


def _claim(path: str, target: str, cooldown: float) -> float | None:
    """Record a repair of ``target`` now unless one is recorded within ``cooldown`` seconds.

    Returns ``None`` when the claim succeeded, else the seconds since the recorded repair.
    """
    # json and contextlib (~2 ms) only once a repair is due; a healthy one-shot check never is.
    from healthcheck.sdk.state import locked_state

    boot = _boot_id()
    with locked_state(path) as state:
        # Read the clock only once the lock is held: a run that read it before waiting would
        # see the holder's record as lying in its future and repair a second time.
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        elapsed = _within_cooldown(state, target, boot, now, cooldown)
        if elapsed is not None:
            return elapsed
        state[target] = {"boot_id": boot, "boottime": now, "time": time.time()}
    return None


def _within_cooldown(
    state: dict[str, Any], target: str, boot: str, now: float, cooldown: float
) -> float | None:
    """Seconds since the repair of ``target`` recorded in ``state`` if within ``cooldown``."""
    last = state.get(target)
    if isinstance(last, dict) and last.get("boot_id") == boot:
        try:
            elapsed = now - float(last.get("boottime", 0.0))
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit integer
            return None
        if 0 <= elapsed <= cooldown:
            return elapsed
    return None


def _decide(ctx: CheckContext, repair: Repair) -> tuple[bool, str]:
    """Whether the policy allows a repair now, and why (one line)."""
    opts = ctx.options
    cooldown = float(getattr(opts, "cooldown_time", DEFAULT_COOLDOWN))
    try:
        uptime = float(_call(repair.uptime, ctx))
    except (_PluginFailed, TypeError, ValueError, OverflowError) as exc:
        # NPD: an uptime failure is logged and nothing is repaired
        return False, f"not repairing: cannot get the uptime: {_reason(exc)}"
    if not math.isfinite(uptime):
        return False, f"not repairing: cannot get the uptime: {uptime} seconds"
    if not uptime > cooldown:
        return False, (
            f"not repairing: up {format_duration(round(max(uptime, 0.0)))}, "
            f"not longer than the cooldown {format_duration(cooldown)}"
        )
    return True, f"up {format_duration(round(uptime))}"


def apply(checker: str, ctx: CheckContext, repair: Repair) -> str:
    """Run ``repair`` if the policy allows it; return the one-line account that was logged.

    In a dry run (:func:`dry_run_only` or ``dry_run_repair``) nothing is run or recorded: the
    account says what would have happened, and the preview sinks hear of it.
    """
    opts = ctx.options
    if not getattr(opts, "enable_repair", True):
        return ""
    dry_run = _dry_run or bool(getattr(opts, "dry_run_repair", False))
    allowed, why = _decide(ctx, repair)
    try:
        if dry_run:
            why = _preview(checker, ctx, repair, allowed, why)
        elif allowed:
            why = _run_claimed(checker, ctx, repair, _text(repair.describe, ctx), why)
    except _PluginFailed as exc:
        why = f"not repairing: the checker's repair failed to describe itself: {exc}"
    _log(checker, why)
    return why


def _preview(checker: str, ctx: CheckContext, repair: Repair, allowed: bool, why: str) -> str:
    """The dry run's account: the policy's verdict and the cooldown, claimed only in memory."""
    what = _text(repair.describe, ctx)
    target = _text(repair.target, ctx)
    if allowed:
        refused = _claim_in_memory(checker, ctx, target)
        if refused is not None:
            allowed, why = False, refused
    account = f"dry run: would {what} ({why})" if allowed else f"dry run: {why}"
    preview = Preview(checker, target, what, allowed, why)
    with _dry_run_lock:
        sinks = list(_preview_sinks)
    for sink in sinks:
        sink(preview)
    return account


# The repairs a dry run would have made, as the state file would record them (path -> state),
# so that its later previews hit the cooldown as the real runs would.
_dry_claims: dict[str, dict[str, Any]] = {}


def _claim_in_memory(checker: str, ctx: CheckContext, target: str) -> str | None:
    """Why the claim would fail (a repair within the cooldown, on disk or in this dry run);
    ``None`` after recording the would-be repair in memory. The state file is only read."""
    from healthcheck.sdk.state import read_state  # json: only a dry run with a PROBLEM needs it

    opts = ctx.options
    cooldown = float(getattr(opts, "cooldown_time", DEFAULT_COOLDOWN))
    path = state_path(getattr(opts, "state_dir", DEFAULT_STATE_DIR), checker)
    try:
        on_disk = read_state(path)
    except (OSError, ValueError):
        on_disk = {}  # the real run would say why it cannot claim; a preview need not
    boot = _boot_id()
    with _dry_run_lock:
        now = time.clock_gettime(time.CLOCK_BOOTTIME)
        claims = _dry_claims.setdefault(path, {})
        since = _within_cooldown(on_disk, target, boot, now, cooldown)
        last = "last repair"
        if since is None:
            since = _within_cooldown(claims, target, boot, now, cooldown)
            last = "this dry run's last would-be repair"
        if since is None:
            claims[target] = {"boot_id": boot, "boottime": now}
            return None
    return (
        f"not repairing: {last} {format_duration(round(since))} ago, "
        f"within the cooldown {format_duration(cooldown)}"
    )


def _run_claimed(checker: str, ctx: CheckContext, repair: Repair, what: str, why: str) -> str:
    from healthcheck.sdk.state import StateError  # json: only a repair that is due needs it

    opts = ctx.options
    cooldown = float(getattr(opts, "cooldown_time", DEFAULT_COOLDOWN))
    path = state_path(getattr(opts, "state_dir", DEFAULT_STATE_DIR), checker)
    try:
        since = _claim(path, _text(repair.target, ctx), cooldown)
    except (StateError, OSError, ValueError) as exc:
        return f"not repairing: {exc}"
    if since is not None:
        return (
            f"not repairing: last repair {format_duration(round(since))} ago, "
            f"within the cooldown {format_duration(cooldown)}"
        )
    try:
        _call(repair.action, ctx)
    except _PluginFailed as exc:  # best effort, as NPD: log and carry on
        return f"repair failed: {what}: {exc}"
    return f"repaired: {what} ({why})"
