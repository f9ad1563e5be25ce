"""In-process scheduling: each check at its own interval, with jitter, never overlapping itself.

- Every check runs once at start (NPD's boot batch).
- After that a check's first periodic run falls at a random point in the second half of its
  first interval, and each later run is ``interval`` +/- 10 % after the previous start, so
  nodes that started together drift apart (NPD #313, #412, #821).
- Each run gets a thread of its own, so a slow check never delays another.
- A run still going at its timeout is reported UNKNOWN at once; the check is not started again
  until the stuck call returns (a thread cannot be killed), and each due time meanwhile is
  skipped. External programs are killed at their deadline by the process runner instead.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from healthcheck._agent.config import CheckSpec
from healthcheck._agent.programs import run_check_program
from healthcheck._deadline import Deadline, waitable
from healthcheck._protocol import Result
from healthcheck._runner import overrun_result, start_check

JITTER = 0.1

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Report:
    """One finished (or timed-out) run of one check."""

    spec: CheckSpec
    result: Result
    duration: float
    timed_out: bool

    def __repr__(self) -> str:
        return f"Report({self.spec.name}, {self.result!r})"


OnReport = Callable[[Report], object]


def execute(spec: CheckSpec, on_report: OnReport | None = None) -> Report:
    """Run ``spec`` once and return its report (blocks until the check gives up its thread).

    ``on_report`` is called with the report as soon as it is known: at the deadline for a hung
    in-process check, while this function keeps waiting for the stuck call to return.
    """
    started = time.monotonic()
    if spec.argv is not None:
        limit = spec.max_output_length if spec.max_output_length is not None else 0
        result = run_check_program(spec.argv, spec.timeout, limit)
        report = Report(spec, result, time.monotonic() - started, False)
        if on_report is not None:
            on_report(report)
        return report
    assert spec.checker is not None  # a spec is either a program or a checker
    timeout = waitable(spec.timeout)  # the config refuses more; a spec built in code may not
    run = start_check(spec.checker, spec.options, timeout, repair=spec.repair_inline)
    if run.finished.wait(timeout) and run.result is not None:
        report = Report(spec, run.result, time.monotonic() - run.started, False)
        if on_report is not None:
            on_report(report)
        return report
    result = overrun_result(spec.name, spec.timeout, "not restarted until it returns")
    report = Report(spec, result, time.monotonic() - run.started, True)
    if on_report is not None:
        on_report(report)
    run.finished.wait()  # the stuck call holds this check until it returns
    _log.warning(
        "%s: the overrun check returned after %.1fs", spec.name, time.monotonic() - run.started
    )
    return report


class Scheduler:
    """Runs every spec at its interval in threads; calls ``on_report(report)`` for each result."""

    def __init__(
        self,
        specs: Iterable[CheckSpec],
        on_report: OnReport,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._specs = list(specs)
        self._on_report = on_report
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._busy: set[str] = set()
        self._unreported: set[str] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.skipped: dict[str, int] = {s.name: 0 for s in self._specs}
        self.started: dict[str, int] = {s.name: 0 for s in self._specs}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def wait_reported(self, timeout: float) -> bool:
        """Wait until every started run has reported (hung ones report at their timeout)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._unreported, timeout)

    def busy(self) -> set[str]:
        with self._lock:
            return set(self._busy)

    def _launch(self, spec: CheckSpec) -> bool:
        with self._lock:
            if spec.name in self._busy:
                self.skipped[spec.name] += 1
                return False
            self._busy.add(spec.name)
            self._unreported.add(spec.name)
            self.started[spec.name] += 1

        def reported(report: Report) -> None:
            try:
                self._on_report(report)
            finally:
                with self._lock:
                    self._unreported.discard(spec.name)
                    self._idle.notify_all()

        def work() -> None:
            try:
                execute(spec, reported)
            finally:
                with self._lock:
                    self._busy.discard(spec.name)
                    self._unreported.discard(spec.name)
                    self._idle.notify_all()

        threading.Thread(target=work, name=f"run-{spec.name}", daemon=True).start()
        return True

    def _next_due(self, spec: CheckSpec, started: float, first: bool) -> float:
        if first:
            return started + spec.interval * self._rng.uniform(0.5, 1.0)
        return started + spec.interval * (1.0 + self._rng.uniform(-JITTER, JITTER))

    def _loop(self) -> None:
        now = time.monotonic()
        queue: list[tuple[float, int]] = []
        for index, spec in enumerate(self._specs):
            self._launch(spec)
            heapq.heappush(queue, (self._next_due(spec, now, True), index))
        while queue and not self._stop.is_set():
            due, index = queue[0]
            wait = due - time.monotonic()
            if wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            heapq.heappop(queue)
            spec = self._specs[index]
            self._launch(spec)
            heapq.heappush(queue, (self._next_due(spec, time.monotonic(), False), index))
        if not queue:
            self._stop.wait()


def run_all_once(
    specs: Iterable[CheckSpec], on_report: OnReport, grace: float = 1.0
) -> list[Report]:
    """Run every spec once, concurrently; return when each has a report (hung ones included).

    One deadline for all: the longest timeout (each run reports by its own: run_program's
    deadline plus its bounded kill grace, the runner's deadline for in-process checks) plus
    ``grace``; whatever has not reported by then is left out of the list.
    """
    specs = list(specs)
    reports: list[Report] = []
    lock = threading.Lock()
    done = threading.Semaphore(0)

    def collect(report: Report) -> None:
        with lock:
            reports.append(report)
        on_report(report)
        done.release()

    for spec in specs:
        threading.Thread(
            target=execute, args=(spec, collect), name=f"once-{spec.name}", daemon=True
        ).start()
    longest = max((waitable(spec.timeout) for spec in specs), default=0.0)
    deadline = Deadline(longest + grace + 2.0)
    for _ in specs:
        done.acquire(timeout=deadline.remaining())
    with lock:
        return list(reports)
