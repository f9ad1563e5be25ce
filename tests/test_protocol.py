"""The custom-plugin protocol: statuses, message clamping, summarising."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcheck import Result, Status
from healthcheck._protocol import clamp_message, worst


def test_status_values_are_npd_exit_codes():
    assert (Status.OK, Status.PROBLEM, Status.UNKNOWN) == (0, 1, 2)


def test_message_is_trimmed_and_one_line():
    assert clamp_message("  \tfine\n") == "fine"
    assert clamp_message("line one\nline two\r\n") == "line one line two"
    assert clamp_message("bell\x07 esc\x1b[31m red") == "bell  esc [31m red"
    assert clamp_message("para\u2029graph") == "para graph"


def test_message_is_cut_to_80_bytes_by_default():
    assert clamp_message("x" * 90) == "x" * 80
    assert clamp_message("x" * 90, 10) == "x" * 10
    assert clamp_message("abc", 0) == ""


def test_cut_never_splits_a_utf8_character():
    text = "a" + "é" * 50  # 1 + 100 bytes
    cut = clamp_message(text, 80)
    assert len(cut.encode()) == 79  # 80 would split the 40th é
    assert cut == "a" + "é" * 39


@given(st.text(), st.integers(min_value=0, max_value=200))
def test_clamped_message_always_fits_and_is_printable(text, limit):
    cut = clamp_message(text, limit)
    assert len(cut.encode("utf-8", "surrogatepass")) <= limit
    assert "\n" not in cut and "\r" not in cut
    assert cut == cut.strip()


def test_negative_limit_is_refused():
    with pytest.raises(ValueError):
        clamp_message("x", -1)


def test_worst_ranks_problem_over_unknown_over_ok():
    assert worst([]) is Status.OK
    assert worst([Status.OK, Status.UNKNOWN]) is Status.UNKNOWN
    assert worst([Status.UNKNOWN, Status.PROBLEM, Status.OK]) is Status.PROBLEM


def test_result_equality_and_constructors():
    assert Result.ok() == Result(Status.OK, "")
    assert Result.problem("x") != Result.unknown("x")
    assert Result(1, "m").status is Status.PROBLEM
    with pytest.raises(ValueError):
        Result(7, "no such status")
