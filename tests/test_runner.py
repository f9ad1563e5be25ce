"""The runner turns every failure of a check into UNKNOWN and enforces the deadline."""

from __future__ import annotations

import threading
import time

from healthcheck import Checker, Condition, Result, Status
from healthcheck._runner import run_check

COND = Condition("", "Reason", permanent=False)


def _checker(check, timeout=5.0):
    return Checker("sample", description="test", check=check, condition=COND, timeout=timeout)


def test_result_passes_through():
    outcome = run_check(_checker(lambda ctx: Result.problem("bad")), None)
    assert outcome.result == Result.problem("bad")
    assert not outcome.timed_out


def test_exception_becomes_unknown_with_one_line():
    def check(ctx):
        raise OSError(13, "Permission denied\nsecond line")

    outcome = run_check(_checker(check), None)
    assert outcome.result.status is Status.UNKNOWN
    assert outcome.result.message == (
        "sample check failed: PermissionError: [Errno 13] Permission denied second line"
    )


def test_wrong_return_type_is_unknown():
    outcome = run_check(_checker(lambda ctx: "fine"), None)
    assert outcome.result == Result.unknown("sample check returned str, not a Result")


def test_deadline_cuts_off_a_stuck_check_and_reports_when_it_returns():
    release = threading.Event()

    def check(ctx):
        release.wait(10)
        return Result.ok()

    start = time.monotonic()
    outcome = run_check(_checker(check), None, timeout=0.3)
    assert time.monotonic() - start < 2
    assert outcome.timed_out
    assert outcome.result == Result.unknown("sample check did not finish within 300ms")
    assert not outcome.run.finished.is_set()
    release.set()
    assert outcome.run.finished.wait(5)
    assert outcome.run.result == Result.ok()


def test_context_carries_options_and_remaining_time():
    seen = {}

    def check(ctx):
        seen["remaining"] = ctx.remaining()
        seen["options"] = ctx.options
        return Result.ok()

    run_check(_checker(check), {"a": 1}, timeout=2.0)
    assert 0 < seen["remaining"] <= 2.0
    assert seen["options"] == {"a": 1}
