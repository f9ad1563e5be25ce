"""Durations as Go's time.ParseDuration reads them, and written back as NPD writes them."""

from __future__ import annotations

import pytest

from healthcheck.sdk.duration import DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("250ms", 0.25),
        ("1.5h", 5400.0),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("86400s", 86400.0),
        ("30000ms", 30.0),
        ("-1m", -60.0),
        ("+2s", 2.0),
        ("100us", 1e-4),
        ("100µs", 1e-4),
        ("3ns", 3e-9),
        ("1h1m1s", 3661.0),
    ],
)
def test_go_durations_parse(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5x", "s", "1h30", ".s", "5 s", "-", "1e3s", "٣s"])
def test_invalid_durations_name_the_input(text):
    with pytest.raises(DurationError) as err:
        parse_duration(text)
    assert f'"{text}"' in str(err.value)
    assert "e.g. 30s" in str(err.value)


def test_unknown_unit_is_named():
    with pytest.raises(DurationError, match='unknown unit "x"'):
        parse_duration("5x")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (10, "10s"),
        (300, "5m"),
        (180, "3m"),
        (5400, "1h30m"),
        (0.25, "250ms"),
        (86400, "24h"),
        (61, "1m1s"),
        (7.5, "7.5s"),
    ],
)
def test_format_round_trips(seconds, text):
    assert format_duration(seconds) == text
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value, text", [(float("inf"), "infs"), (float("-inf"), "-infs")])
def test_format_duration_is_total(value, text):
    """Before: OverflowError/ValueError from int() while an error message was being built."""
    assert format_duration(value) == text
    assert format_duration(float("nan")) == "nans"
