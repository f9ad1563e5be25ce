"""log_counter.window: NPD's GetStartTime cases (pkg/util/helpers_test.go), against a fixed now."""

from __future__ import annotations

import pytest

from healthcheck.sdk.duration import DurationError
from healthcheck_plugins.log_counter.window import lookback_start, uptime, validate_durations

NOW = 1_700_000_000.0

# (name, uptime, lookback, delay, expected start relative to NOW); the eleven cases of
# TestGetStartTime, of which the first two are errors.
CASES = [
    ("node is just up, no lookback and delay", 0, "", "", 0),
    ("no delay, lookback > uptime", 5, "7s", "", -5),
    ("no delay, lookback < uptime", 5, "3s", "", -3),
    ("no lookback, delay > uptime", 5, "", "7s", 2),
    ("no lookback, delay < uptime", 5, "", "3s", 0),
    ("uptime < delay", 10, "6s", "12s", 2),
    ("uptime > delay, uptime < lookback", 10, "12s", "7s", -3),
    ("uptime > delay, uptime > lookback, lookback > uptime - delay", 10, "6s", "7s", -3),
    ("uptime > delay, uptime > lookback, lookback < uptime - delay", 10, "2s", "7s", -2),
]


@pytest.mark.parametrize(
    ("name", "up", "lookback", "delay", "offset"), CASES, ids=[c[0] for c in CASES]
)
def test_get_start_time(name, up, lookback, delay, offset):
    assert lookback_start(NOW, up, lookback, delay) == NOW + offset


@pytest.mark.parametrize(
    ("lookback", "delay", "message"),
    [
        ("abc", "", 'failed to parse lookback duration "abc"'),
        ("", "abc", 'failed to parse delay duration "abc"'),
    ],
    ids=["bad lookback value", "bad delay value"],
)
def test_bad_durations_are_errors(lookback, delay, message):
    with pytest.raises(DurationError, match=message):
        lookback_start(NOW, 0, lookback, delay)
    with pytest.raises(DurationError, match=message):
        validate_durations(lookback, delay)


def test_compound_and_negative_go_durations():
    assert lookback_start(NOW, 10_000, "1h30m", "") == NOW - 5400
    # Go accepts a negative lookback; the start then lies in the future and nothing is read.
    assert lookback_start(NOW, 10_000, "-5m", "") == NOW + 300


def test_uptime_reads_proc_uptime(tmp_path):
    (tmp_path / "uptime").write_text("12345.67 98765.43\n")
    assert uptime(str(tmp_path)) == 12345.67


def test_uptime_falls_back_to_psutil_when_proc_is_unreadable(tmp_path):
    import time

    import psutil

    expected = time.time() - psutil.boot_time()
    assert abs(uptime(str(tmp_path / "missing")) - expected) < 5
