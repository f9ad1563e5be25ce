"""The one deadline helper the runner, the scheduler and the agent's shutdown share."""

from __future__ import annotations

import math
import time

import pytest

from healthcheck._deadline import Deadline, waitable
from healthcheck._declaration import MAX_DURATION


@pytest.mark.parametrize(
    ("given", "held_to"),
    [
        (math.nan, MAX_DURATION),
        (math.inf, MAX_DURATION),
        (-math.inf, 0.0),
        (-5, 0.0),
        (10**30, MAX_DURATION),
        (2.5, 2.5),
        (True, 1.0),
    ],
)
def test_waitable_holds_any_timeout_to_what_timers_take(given, held_to):
    assert waitable(given) == held_to
    assert type(waitable(given)) is float


def test_deadline_counts_down_from_its_start_and_never_goes_negative():
    deadline = Deadline(0.2)
    assert 0.0 < deadline.remaining() <= 0.2 and not deadline.expired()
    time.sleep(0.25)
    assert deadline.expired() and deadline.remaining() == 0.0
    assert deadline.elapsed() >= 0.25


def test_deadline_from_a_given_start_and_a_hostile_length():
    start = time.monotonic() - 10.0
    assert Deadline(5.0, start).expired()
    assert Deadline(math.nan).seconds == MAX_DURATION  # waits as long as a timer can, no error
    assert Deadline(-1.0, start).at == start
