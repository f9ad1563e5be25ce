"""healthcheck.sdk.text.one_line: the one helper every untrusted string passes through."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthcheck.sdk.text import one_line


@given(st.text(), st.integers(min_value=0, max_value=300), st.sampled_from(["", "…", "..."]))
def test_result_is_one_bounded_printable_line(text, limit, marker):
    line = one_line(text, limit, marker=marker)
    assert len(line.encode("utf-8")) <= limit
    assert line.isprintable()
    assert line == line.strip()


def test_marker_shows_a_cut_and_only_a_cut():
    assert one_line("x" * 100, 10, marker="…") == "x" * 7 + "…"
    assert one_line("short", 10, marker="…") == "short"


def test_non_strings_are_stringified():
    assert one_line(ValueError("bad\nthing"), 80) == "bad thing"
    assert one_line(42) == "42"


def test_huge_input_is_read_only_as_far_as_the_result_needs():
    huge = "\x1b[31m" + "a\n" * (4 << 20)
    tracemalloc.start()
    try:
        line = one_line(huge, 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(line.encode()) <= 1024
    # sanitising all 8 MiB would allocate at least that much again
    assert peak < 256 * 1024


def test_leading_junk_beyond_the_scan_window_yields_nothing():
    assert one_line("\x00" * 10_000 + "late", 80) == ""
    assert one_line("\x00" * 100 + "early", 80) == "early"


def test_negative_limit_is_refused():
    with pytest.raises(ValueError):
        one_line("x", -1)
