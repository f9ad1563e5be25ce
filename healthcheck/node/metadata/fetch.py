"""One read of a provider's maintenance events over HTTP, tokens included.

Steady state is one request: Alibaba and AWS tokens are cached in a state file until shortly
before their TTL ends (and a metaserver found to allow plain requests is remembered likewise).
On 401/403 the cached token is dropped and one fresh token is fetched. A caller that polls (the
agent) reuses one keep-alive :class:`~healthcheck.node.http.Connection` per endpoint.
"""

from __future__ import annotations

import os
import threading
import time

from healthcheck.node.http import Connection, HttpError, split_url
from healthcheck.node.metadata.events import Reading

TOKEN_STATE_FILE = "metadata-token.json"  # noqa: S105 (a file name)
MAX_TOKEN_BYTES = 4096
AUTH_FAILURES = (401, 403)

_idle: dict[tuple[str, int], Connection] = {}
_idle_lock = threading.Lock()


class FetchError(Exception):
    """The events could not be read; one line for the user."""


def _borrow(host: str, port: int) -> Connection:
    with _idle_lock:
        conn = _idle.pop((host, port), None)
    return conn or Connection(host, port)


def _give_back(conn: Connection) -> None:
    with _idle_lock:
        old = _idle.pop((conn.host, conn.port), None)
        _idle[(conn.host, conn.port)] = conn
    if old is not None and old is not conn:
        old.close()


def _refresh_margin(ttl: float) -> float:
    """How long before expiry a cached token is renewed: a tenth of its TTL, at most a minute."""
    return min(60.0, ttl / 10)


class _Session:
    """One read: the connection, the deadline, and the token cache of this endpoint."""

    def __init__(self, provider, endpoint: str, deadline: float, state_dir: str, ttl: int):
        host, port, base = split_url(endpoint.rstrip("/"))
        self.provider = provider
        self.base = base.rstrip("/")
        self.deadline = deadline
        self.state_path = os.path.join(state_dir, TOKEN_STATE_FILE)
        self.key = f"{provider.NAME} {host}:{port}"
        self.ttl = ttl
        self.conn = _borrow(host, port)
        self.requests = 0

    def request(self, method: str, path: str, headers: dict[str, str]):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise FetchError("timed out")
        self.requests += 1
        try:
            return self.conn.request(method, self.base + path, headers=headers, timeout=remaining)
        except HttpError as exc:
            raise FetchError(str(exc)) from None

    # ---------------------------------------------------------------------------- token cache

    def cached(self) -> dict | None:
        from healthcheck.state import read_state

        entry = read_state(self.state_path).get(self.key)
        if not isinstance(entry, dict) or not isinstance(entry.get("until"), (int, float)):
            return None
        if entry["until"] <= time.time():
            return None
        if entry.get("plain") is True or isinstance(entry.get("token"), str):
            return entry
        return None

    def remember(self, entry: dict | None) -> None:
        from healthcheck.state import locked_state

        with locked_state(self.state_path) as state:
            if entry is None:
                state.pop(self.key, None)
            else:
                state[self.key] = entry

    def new_token(self) -> str | None:
        """A fresh token, or ``None`` when the metaserver does not hand one out (plain mode)."""
        headers = {self.provider.TOKEN_TTL_HEADER: str(self.ttl)}
        resp = self.request("PUT", self.provider.TOKEN_PATH, headers)
        if resp.status != 200:
            return None
        from healthcheck.text import one_line

        token = resp.body.strip()
        if not token or len(token) > MAX_TOKEN_BYTES or not token.isascii():
            raise FetchError("token reply is not a token")
        text = token.decode("ascii")
        if one_line(text, MAX_TOKEN_BYTES) != text:  # control characters: not a header value
            raise FetchError("token reply is not a token")
        return text

    # ---------------------------------------------------------------------------------- reads

    def get_events(self, token: str | None):
        headers = dict(self.provider.HEADERS)
        if token is not None:
            headers[self.provider.TOKEN_HEADER] = token
        return self.request("GET", self.provider.EVENTS_PATH, headers)

    def read(self):
        """The events response, with a token where the provider has them."""
        if self.provider.TOKEN_PATH is None:
            return self.get_events(None)
        entry = self.cached()
        if entry is not None:
            resp = self.get_events(entry.get("token"))
            if resp.status not in AUTH_FAILURES:
                return resp
            self.remember(None)  # expired, revoked, or hardened mode switched on: start over
        return self.fresh_read()

    def fresh_read(self):
        until = time.time() + self.ttl - _refresh_margin(self.ttl)
        token = self.new_token()
        if token is not None:
            self.remember({"token": token, "until": until})
            return self.get_events(token)
        resp = self.get_events(None)  # no token to be had: plain mode, if the server allows it
        if resp.status in AUTH_FAILURES:
            raise FetchError(f"HTTP {resp.status} without a token, and none was issued")
        if resp.status == 200:
            self.remember({"plain": True, "until": until})
        return resp


def _media_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def read_events(
    provider: str,
    endpoint: str | None,
    timeout: float,
    state_dir: str,
    token_ttl: int = 21600,
    stats: dict | None = None,
) -> Reading:
    """Read and parse ``provider``'s events within ``timeout`` seconds; never raises.

    ``stats``, when given, receives ``requests`` (HTTP requests made) for tests and benches.
    """
    from healthcheck.node.metadata import provider_module
    from healthcheck.state import StateError

    module = provider_module(provider)
    deadline = time.monotonic() + timeout
    try:
        session = _Session(
            module, endpoint or module.DEFAULT_ENDPOINT, deadline, state_dir, token_ttl
        )
    except HttpError as exc:
        return Reading.failed(str(exc))
    try:
        resp = session.read()
    except FetchError as exc:
        session.conn.close()
        return Reading.failed(str(exc))
    except StateError as exc:
        session.conn.close()
        return Reading.failed(str(exc))
    finally:
        if stats is not None:
            stats["requests"] = session.requests
    _give_back(session.conn)
    if resp.status != 200:
        return Reading.failed(f"HTTP {resp.status} from the metadata server")
    media = _media_type(resp.headers)
    if media not in module.CONTENT_TYPES:
        from healthcheck.text import one_line

        return Reading.failed(f"unexpected content type '{one_line(media, 40, marker='…')}'")
    return module.parse(resp.body)
