"""A client-side rate limit for every API call the agent makes: client-go's QPS and burst.

:class:`TokenBucket` is client-go's ``flowcontrol.NewTokenBucketRateLimiter(qps, burst)``: it
starts full with ``burst`` tokens and refills ``qps`` tokens a second. Unlike client-go it never
sleeps: :meth:`TokenBucket.take` answers how long until a token is there, and
:class:`RateLimitedApi` turns "no token" into an :class:`~healthcheck._agent.kube.ApiError` with
status 429 and a ``retry_after``. The reporter's backoff (already there for the server's own 429)
then retries when the token is due, re-reading the latest state, so a condition that flipped back
meanwhile is sent once, not twice.
"""

from __future__ import annotations

import threading
from typing import Any

from healthcheck._agent.clock import Clock
from healthcheck._agent.kube import Api, ApiError

THROTTLED = 429


class TokenBucket:
    """``burst`` tokens, refilled at ``qps`` a second, on the injected clock's monotonic time."""

    def __init__(self, qps: float, burst: int, clock: Clock) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be > 0 and burst >= 1")
        self.qps = float(qps)
        self.burst = int(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._last = clock.monotonic()

    def take(self) -> float:
        """Take a token and return 0.0, or take none and return the seconds until one is due."""
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.qps


class RateLimitedApi:
    """The agent's four API calls, each spending a token of ``bucket`` first.

    A call without a token is not sent: it raises ``ApiError(status=429, retry_after=...)``,
    which the reporter treats like the server's own 429. ``throttled`` counts them.
    """

    def __init__(self, api: Api, bucket: TokenBucket) -> None:
        self.api = api
        self.bucket = bucket
        self.throttled = 0

    def _gate(self, what: str) -> None:
        wait = self.bucket.take()
        if wait > 0.0:
            self.throttled += 1
            raise ApiError(
                f"{what}: client-side rate limit ({self.bucket.qps:g}/s, burst "
                f"{self.bucket.burst}): next call in {wait:.1f}s",
                THROTTLED,
                wait,
            )

    def get_node(self, name: str) -> dict[str, Any]:
        self._gate(f"GET node {name}")
        return self.api.get_node(name)

    def patch_node_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._gate(f"PATCH node {name} status")
        return self.api.patch_node_status(name, body)

    def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self._gate("POST event")
        return self.api.create_event(namespace, body)

    def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        self._gate(f"PATCH event {name}")
        return self.api.patch_event(namespace, name, patch)


def limited(api: Api, qps: float, burst: int, clock: Clock) -> Api:
    """``api`` behind a token bucket, or ``api`` itself when ``qps`` is 0 (no limit)."""
    if qps <= 0:
        return api
    return RateLimitedApi(api, TokenBucket(qps, burst, clock))
