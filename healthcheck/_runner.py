"""One invocation of one checker: a deadline, and any failure turned into UNKNOWN.

The check runs in a daemon thread so that the caller regains control at the deadline even when
the check is stuck in a system call. A stuck thread cannot be killed; the one-shot front door
exits anyway, and the agent does not start that checker again until the thread returns
(:attr:`CheckRun.finished`).
"""

from __future__ import annotations

import threading
import time

from healthcheck._deadline import waitable
from healthcheck._declaration import CheckContext, Checker
from healthcheck._protocol import Result, Status, describe_error
from healthcheck.sdk.duration import format_duration
from healthcheck.sdk.text import RESULT_LIMIT, one_line, short_repr


class CheckRun:
    """A started check: completes :attr:`finished` and sets :attr:`result` when it returns."""

    __slots__ = ("checker", "finished", "result", "started")

    def __init__(self, checker: Checker) -> None:
        self.checker = checker
        self.finished = threading.Event()
        self.result: Result | None = None
        self.started = time.monotonic()


class Outcome:
    """What a caller gets back: the result, how long it took, whether the deadline cut it off."""

    __slots__ = ("duration", "result", "run", "timed_out")

    def __init__(self, result: Result, duration: float, timed_out: bool, run: CheckRun) -> None:
        self.result = result
        self.duration = duration
        self.timed_out = timed_out
        self.run = run


def guarded(call, *args, failed):
    """``call(*args)``, or ``failed(exc)`` for whatever it raised instead of returning.

    The one place the host calls into a plugin's code (``check``, ``applies``, a repair) and
    turns failure into an answer, as nagiosplugin's ``runtime.guarded`` does: any exception,
    ``sys.exit()`` and other BaseExceptions included, goes to ``failed``; only KeyboardInterrupt,
    the user's, passes.
    """
    try:
        return call(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a plugin's bug or a node's fault: never a traceback
        return failed(exc)


def failure_result(checker: Checker, exc: BaseException) -> Result:
    """UNKNOWN with a true reason for anything a check raised instead of returning."""
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, (int, type(None))) else short_repr(exc.code, 60)
        return Result.unknown(f"{checker.name} check exited (sys.exit({code}))")
    return Result.unknown(f"{checker.name} check failed: {describe_error(exc)}")


def checked_result(checker: Checker, result) -> Result:
    """``result`` if it is a well-formed :class:`Result`, as one bounded line; else UNKNOWN.

    A plugin may hand back anything, or mutate a Result after construction (a plain ``int``
    status, a ``bytes`` message); the host must not trip over it later, in a thread where
    nobody would see the error.
    """
    if not isinstance(result, Result):
        return Result.unknown(
            f"{checker.name} check returned {type(result).__name__}, not a Result"
        )
    status, message = result.status, result.message
    if type(status) is not Status:
        return Result.unknown(
            f"{checker.name} check returned status {short_repr(status, 60)}, "
            "not a healthcheck.Status"
        )
    if not isinstance(message, str):
        return Result.unknown(
            f"{checker.name} check returned a {type(message).__name__} message, not a str"
        )
    bounded = one_line(message, RESULT_LIMIT)
    return result if bounded == message else Result(status, bounded)


def call_check(checker: Checker, ctx: CheckContext, repair: bool = True) -> Result:
    """Call ``checker.check`` and make sure a :class:`Result` comes back, whatever happens.

    Any exception, ``sys.exit()`` included, becomes UNKNOWN with a one-line reason; only
    KeyboardInterrupt passes. The message is made one line of at most
    :data:`~healthcheck.sdk.text.RESULT_LIMIT` bytes. On PROBLEM a declared repair goes to the
    shared policy, unless ``repair`` is false (front doors that only look, such as
    ``healthcheck status``).
    """
    result = guarded(
        lambda: checked_result(checker, checker.check(ctx)),
        failed=lambda exc: failure_result(checker, exc),
    )
    if repair and checker.repair is not None and result.status == Status.PROBLEM:
        # Here, not at the top: the policy (and its state files' json) is loaded only when a
        # check with a repair finds a problem.
        from healthcheck.sdk import repair as repair_policy

        # The shared policy (cooldown, rate limit, dry run) decides; a repair never alters
        # the result, and its own failures are logged by the policy, not raised.
        guarded(
            repair_policy.apply,
            checker.name,
            ctx,
            checker.repair,
            failed=lambda exc: ctx.log(f"repair policy failed: {describe_error(exc)}"),
        )
    return result


def start_check(
    checker: Checker, options, timeout: float, verbose: bool = False, repair: bool = True
) -> CheckRun:
    """Start ``checker`` in a daemon thread with a deadline ``timeout`` seconds from now."""
    timeout = waitable(timeout)
    run = CheckRun(checker)
    ctx = CheckContext(checker.name, options, run.started + timeout, verbose)

    def target() -> None:
        try:
            run.result = call_check(checker, ctx, repair)
        except KeyboardInterrupt:
            run.result = Result.unknown(f"{checker.name} check was interrupted")
        finally:
            run.finished.set()

    threading.Thread(target=target, name=f"check-{checker.name}", daemon=True).start()
    return run


def run_check(
    checker: Checker,
    options,
    timeout: float | None = None,
    verbose: bool = False,
    repair: bool = True,
) -> Outcome:
    """Run ``checker`` once and wait at most ``timeout`` seconds (default: its declared one)."""
    timeout = waitable(checker.timeout if timeout is None else timeout)
    run = start_check(checker, options, timeout, verbose, repair)
    if run.finished.wait(timeout) and run.result is not None:
        return Outcome(run.result, time.monotonic() - run.started, False, run)
    result = overrun_result(checker.name, timeout)
    return Outcome(result, time.monotonic() - run.started, True, run)


def overrun_result(name: str, timeout: float, note: str = "") -> Result:
    """UNKNOWN for a check still running at its deadline (the one wording every front door
    uses); ``note`` adds what happens to the stuck call, e.g. the agent's "not restarted"."""
    message = f"{name} check did not finish within {format_duration(timeout)}"
    return Result.unknown(f"{message}; {note}" if note else message)
