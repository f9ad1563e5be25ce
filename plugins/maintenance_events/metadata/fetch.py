"""One read of a provider's maintenance events over HTTP, tokens included.

Steady state is one request: Alibaba and AWS tokens are cached in a state file until shortly
before their TTL ends (and a metaserver found to allow plain requests is remembered likewise).
On 401/403 the cached token is dropped and one fresh token is fetched. A caller that polls (the
agent) reuses one keep-alive :class:`~healthcheck.sdk.http.Connection` per endpoint.
"""

from __future__ import annotations

import os
import threading
import time

from healthcheck.sdk.http import Connection, HttpError, split_url
from healthcheck_plugins.maintenance_events.metadata.events import Reading

TOKEN_STATE_FILE = "metadata-token.json"  # noqa: S105 (a file name)
MAX_TOKEN_BYTES = 4096
MAX_TOKEN_TTL = 21600  # seconds: the largest --token-ttl, the providers' own limit
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
        """The cached entry, if it is one we could have written and is still valid.

        The state file is read as hostile: a token goes into a request header, so it must be
        what :meth:`new_token` accepts (a "€" made the header encoding raise, 1 MiB went out).
        """
        from healthcheck.sdk.state import read_state

        entry = read_state(self.state_path).get(self.key)
        if not isinstance(entry, dict):
            return None
        until = entry.get("until")
        if not isinstance(until, float | int) or isinstance(until, bool):
            return None
        # No token of ours lives longer than the largest TTL (6h): a later expiry (NaN, 1e999,
        # a 400-digit int) is a record we did not write, and would never be renewed.
        now = time.time()
        if not now < until <= now + MAX_TOKEN_TTL:
            return None
        token = entry.get("token")
        if entry.get("plain") is True or (isinstance(token, str) and _is_token(token)):
            return entry
        return None

    def remember(self, entry: dict | None) -> None:
        from healthcheck.sdk.state import locked_state

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
        token = resp.body.strip()
        if not token.isascii() or not _is_token(text := token.decode("ascii")):
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


def _is_token(text: str) -> bool:
    """A token we can send as a header value: printable ASCII, at most MAX_TOKEN_BYTES."""
    return 0 < len(text) <= MAX_TOKEN_BYTES and text.isascii() and text.isprintable()


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
    from healthcheck.sdk.state import StateError
    from healthcheck_plugins.maintenance_events.metadata import provider_module

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
        from healthcheck.sdk.text import one_line

        return Reading.failed(f"unexpected content type '{one_line(media, 40, marker='…')}'")
    return module.parse(resp.body)
