"""The agent's API-traffic settings (rate limit and spread): config keys, validation, defaults.

::

    apiQPS: 5            # client-side token bucket: sustained API calls per second; 0 = no limit
    apiBurst: 10         # calls allowed at once before the QPS applies (>= 1)
    startupSpread: 5m    # hold the start-up read and first PATCH up to this long (0s: at once)
    changeSpread: 0s     # hold each change up to this long extra (0s: within the 0.5 s batch)
    startupReadSpread: false  # hold the start-up read of the node within startupSpread too

Errors are ``ValueError`` with one line naming the key; :mod:`healthcheck._agent.config` turns
them into its ``ConfigError``.
"""

from __future__ import annotations

import math
from typing import Any

from healthcheck.sdk.duration import parse_duration

KEYS = ("apiQPS", "apiBurst", "startupSpread", "changeSpread", "startupReadSpread")
DEFAULT_QPS = 5.0  # client-go's defaults: a guard against a runaway loop, not pacing
DEFAULT_BURST = 10
DEFAULT_STARTUP_SPREAD = 300.0
DEFAULT_CHANGE_SPREAD = 0.0
MAX_QPS = 1000.0
MAX_BURST = 1000
MAX_SPREAD = 3600.0


class TrafficSettings:
    """Validated traffic settings; see the module docstring for their meaning."""

    __slots__ = ("burst", "change_spread", "qps", "read_spread", "startup_spread")

    def __init__(
        self,
        qps: float = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        startup_spread: float = DEFAULT_STARTUP_SPREAD,
        change_spread: float = DEFAULT_CHANGE_SPREAD,
        read_spread: bool = False,
    ) -> None:
        self.qps = qps
        self.burst = burst
        self.startup_spread = startup_spread
        self.change_spread = change_spread
        self.read_spread = read_spread

    def __repr__(self) -> str:
        return (
            f"TrafficSettings(qps={self.qps}, burst={self.burst}, "
            f"startup_spread={self.startup_spread}, change_spread={self.change_spread}, "
            f"read_spread={self.read_spread})"
        )


def _spread(value: object, key: str) -> float:
    if not isinstance(value, str):
        raise ValueError(f'{key}: expected a duration string such as "5m", got {value!r}')
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
    if not 0 <= seconds <= MAX_SPREAD:
        raise ValueError(f'{key}: duration "{value}" must be between 0s and 1h')
    return seconds


def parse_traffic(data: dict[str, Any]) -> TrafficSettings:
    """The traffic settings from the agent's top-level config mapping (absent keys: defaults)."""
    settings = TrafficSettings()
    if "apiQPS" in data:
        qps = data["apiQPS"]
        if isinstance(qps, bool) or not isinstance(qps, (int, float)) or not math.isfinite(qps):
            raise ValueError(f"apiQPS: expected a number, got {qps!r}")
        if not 0 <= qps <= MAX_QPS:
            raise ValueError(f"apiQPS: {qps} must be between 0 (no limit) and {MAX_QPS:g}")
        settings.qps = float(qps)
    if "apiBurst" in data:
        burst = data["apiBurst"]
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise ValueError(f"apiBurst: expected a whole number, got {burst!r}")
        if not 1 <= burst <= MAX_BURST:
            raise ValueError(f"apiBurst: {burst} must be between 1 and {MAX_BURST}")
        settings.burst = burst
    if "startupSpread" in data:
        settings.startup_spread = _spread(data["startupSpread"], "startupSpread")
    if "changeSpread" in data:
        settings.change_spread = _spread(data["changeSpread"], "changeSpread")
    if "startupReadSpread" in data:
        read = data["startupReadSpread"]
        if not isinstance(read, bool):
            raise ValueError(f"startupReadSpread: expected true or false, got {read!r}")
        settings.read_spread = read
    return settings
