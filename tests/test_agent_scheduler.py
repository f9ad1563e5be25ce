"""The in-process scheduler: boot run, intervals with jitter, no overlap, hung checks."""

from __future__ import annotations

import random
import threading
import time

from healthcheck import Checker, Condition, Result, Status
from healthcheck._agent.config import CheckSpec
from healthcheck._agent.scheduler import Scheduler, run_all_once


def make_spec(name, check, interval=0.1, timeout=1.0):
    checker = Checker(
        name,
        description=name,
        check=check,
        condition=Condition("", "R", permanent=False),
        interval=interval,
        timeout=timeout,
    )
    return CheckSpec(
        name=name,
        checker=checker,
        options=checker.defaults(),
        interval=interval,
        timeout=timeout,
        permanent=False,
        reason="R",
    )


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.reports = []

    def __call__(self, report):
        with self.lock:
            self.reports.append((time.monotonic(), report))

    def of(self, name):
        with self.lock:
            return [r for _, r in self.reports if r.spec.name == name]


def wait_until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_every_check_runs_once_at_start():
    recorder = Recorder()
    specs = [make_spec(f"c{i}", lambda ctx: Result.ok(), interval=60) for i in range(3)]
    scheduler = Scheduler(specs, recorder)
    scheduler.start()
    try:
        assert wait_until(lambda: all(recorder.of(f"c{i}") for i in range(3)), 2)
        time.sleep(0.2)
        assert [len(recorder.of(f"c{i}")) for i in range(3)] == [1, 1, 1]
    finally:
        scheduler.stop()


def test_hung_check_is_unknown_not_restarted_and_never_delays_others():
    release = threading.Event()
    calls = []

    def hang(ctx):
        calls.append(time.monotonic())
        release.wait(10)
        return Result.ok("returned at last")

    recorder = Recorder()
    hung = make_spec("hung", hang, interval=0.05, timeout=0.2)
    fast = make_spec("fast", lambda ctx: Result.ok(), interval=0.05)
    scheduler = Scheduler([hung, fast], recorder)
    scheduler.start()
    try:
        assert wait_until(lambda: recorder.of("hung"), 2)
        report = recorder.of("hung")[0]
        assert report.result.status == Status.UNKNOWN and report.timed_out
        assert report.result.message == (
            "hung check did not finish within 200ms; not restarted until it returns"
        )
        fast_before = len(recorder.of("fast"))
        time.sleep(0.5)
        assert len(calls) == 1  # not started again while stuck
        assert scheduler.skipped["hung"] >= 3
        assert len(recorder.of("fast")) >= fast_before + 4  # the other check kept its pace
        release.set()
        assert wait_until(lambda: len(calls) >= 2, 2)  # started again once it returned
    finally:
        release.set()
        scheduler.stop()


def test_a_check_never_overlaps_itself():
    running, peak, lock = [0], [0], threading.Lock()

    def slow(ctx):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.15)
        with lock:
            running[0] -= 1
        return Result.ok()

    recorder = Recorder()
    scheduler = Scheduler([make_spec("slow", slow, interval=0.02)], recorder)
    scheduler.start()
    try:
        assert wait_until(lambda: len(recorder.of("slow")) >= 3, 3)
    finally:
        scheduler.stop()
    assert peak[0] == 1


def test_jitter_spreads_first_runs_and_keeps_intervals_near_nominal():
    spec = make_spec("x", lambda ctx: Result.ok(), interval=100)
    scheduler = Scheduler([spec], lambda r: None, rng=random.Random(7))
    firsts = [scheduler._next_due(spec, 0.0, True) for _ in range(200)]
    laters = [scheduler._next_due(spec, 0.0, False) for _ in range(200)]
    assert 50 <= min(firsts) < 60 and 90 < max(firsts) <= 100
    assert 90 <= min(laters) < 95 and 105 < max(laters) <= 110


def test_run_all_once_returns_hung_checks_as_unknown():
    release = threading.Event()
    specs = [
        make_spec("ok", lambda ctx: Result.ok()),
        make_spec("stuck", lambda ctx: release.wait(10) and Result.ok(), timeout=0.2),
    ]
    started = time.monotonic()
    reports = run_all_once(specs, lambda r: None)
    release.set()
    assert time.monotonic() - started < 2
    assert sorted((r.spec.name, r.result.status) for r in reports) == [
        ("ok", Status.OK),
        ("stuck", Status.UNKNOWN),
    ]


def test_wait_reported_lets_runs_under_way_land_but_not_hung_ones():
    release = threading.Event()
    recorder = Recorder()
    slow = make_spec("slow", lambda ctx: time.sleep(0.3) or Result.ok(), interval=60)
    hung = make_spec("hung", lambda ctx: release.wait(10) and Result.ok(), 60, timeout=0.5)
    scheduler = Scheduler([slow, hung], recorder)
    scheduler.start()
    try:
        time.sleep(0.05)
        scheduler.stop()
        started = time.monotonic()
        assert scheduler.wait_reported(3)
        assert time.monotonic() - started < 1.5
        assert [r.result.status for r in recorder.of("slow")] == [Status.OK]
        assert [r.result.status for r in recorder.of("hung")] == [Status.UNKNOWN]
        assert scheduler.busy() == {"hung"}
    finally:
        release.set()
