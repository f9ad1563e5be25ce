"""A cloud metadata server on loopback, for tests and benches: a real HTTP/1.1 server.

It serves the paths, headers and reply shapes of shared/spec/cloud-events.md for one provider
(``alibaba``, ``aws``, ``azure``, ``gcp``), issues and checks tokens the way the ECS metaserver
and IMDSv2 do, counts every request, and can be told to misbehave (:attr:`fault`).
"""

from __future__ import annotations

import collections
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EVENTS_PATHS = {
    "alibaba": "/latest/maintenance/active-system-events",
    "aws": "/latest/meta-data/events/maintenance/scheduled",
    "azure": "/metadata/scheduledevents?api-version=2020-07-01",
    "gcp": "/computeMetadata/v1/instance/maintenance-event",
}
TOKEN_HEADERS = {
    "alibaba": ("X-aliyun-ecs-metadata-token-ttl-seconds", "X-aliyun-ecs-metadata-token"),
    "aws": ("X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token"),
}
FAULTS = (
    None,
    "404",
    "500",
    "hang",
    "truncated",
    "invalid-json",
    "huge",
    "content-type",
    "trickle",
)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-reply (a timeout, a refused body) is not news: no trace on
    stderr, which the tests read."""

    def handle_error(self, request, client_address) -> None:
        pass


class MetadataEmulator:
    """Start with ``with MetadataEmulator("alibaba") as emu:``; ``emu.url`` is the endpoint.

    ``events`` is what the provider would list (native dicts; for GCP the value string).
    ``require_token``: requests without a valid token get 401 (AWS) / 403 (Alibaba).
    ``tokens_supported``: when false the token PUT answers 404, as a metaserver without
    hardened mode would. ``fault`` is one of :data:`FAULTS` (``trickle`` sends a valid reply one
    byte every :attr:`trickle_seconds`, a slow-loris server). ``raw``, when set to ``(status,
    content_type, body)``, is the events reply verbatim: the fuzz tests serve arbitrary bytes.
    """

    def __init__(self, provider: str, events=None) -> None:
        self.provider = provider
        self.events = events if events is not None else ([] if provider != "gcp" else "NONE")
        self.require_token = False
        self.tokens_supported = provider in TOKEN_HEADERS
        self.fault: str | None = None
        self.hang_seconds = 3.0
        self.trickle_seconds = 0.5
        self.raw: tuple[int, str, bytes] | None = None
        self.tokens: dict[str, float] = {}
        self.token_ttls: list[int] = []
        self.counts: collections.Counter = collections.Counter()
        self.keep_alive = True
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    # -------------------------------------------------------------------------------- control

    def __enter__(self) -> MetadataEmulator:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def revoke_tokens(self) -> None:
        """Forget every issued token, as an instance restart or expiry does."""
        with self._lock:
            self.tokens.clear()

    def requests(self, method: str | None = None) -> int:
        """How many requests arrived (of ``method``, when given)."""
        return sum(n for (m, _), n in self.counts.items() if method is None or m == method)

    def body(self) -> bytes:
        if self.provider == "gcp":
            return str(self.events).encode()
        if self.provider == "azure":
            return json.dumps({"DocumentIncarnation": 1, "Events": self.events}).encode()
        return json.dumps(self.events).encode()

    # -------------------------------------------------------------------------------- serving

    def _handler(self):
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; with Nagle on, keep-alive replies
            # would wait for the client's delayed ACK (40 ms) and distort every figure.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes = b"", ctype: str = "") -> None:
                self.send_response(status)
                if not ctype:
                    ctype = "application/text" if emu.provider == "gcp" else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if not emu.keep_alive:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                emu.counts[("PUT", self.path)] += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                names = TOKEN_HEADERS.get(emu.provider)
                if names is None or self.path != "/latest/api/token" or not emu.tokens_supported:
                    return self._send(404, b"not found", "text/plain")
                if self.headers.get("X-Forwarded-For"):
                    return self._send(403, b"forwarded", "text/plain")
                ttl_text = self.headers.get(names[0], "")
                if not ttl_text.isdigit() or not 1 <= int(ttl_text) <= 21600:
                    return self._send(400, b"bad ttl", "text/plain")
                token = secrets.token_urlsafe(32)
                with emu._lock:
                    emu.tokens[token] = time.monotonic() + int(ttl_text)
                    emu.token_ttls.append(int(ttl_text))
                self._send(200, token.encode(), "text/plain")

            def _token_ok(self) -> bool:
                names = TOKEN_HEADERS.get(emu.provider)
                if names is None:
                    return True
                token = self.headers.get(names[1])
                with emu._lock:
                    expiry = emu.tokens.get(token) if token else None
                if token is not None and (expiry is None or expiry < time.monotonic()):
                    return False  # a stale token is refused even when tokens are optional
                return token is not None or not emu.require_token

            def do_GET(self) -> None:
                emu.counts[("GET", self.path)] += 1
                if emu.provider == "azure" and self.headers.get("Metadata") != "true":
                    return self._send(400, b'{"error": "Bad request"}')
                if emu.provider == "gcp" and self.headers.get("Metadata-Flavor") != "Google":
                    return self._send(403, b"Missing Metadata-Flavor:Google header", "text/html")
                if not self._token_ok():
                    return self._send(401 if emu.provider == "aws" else 403, b"", "text/plain")
                if self.path != EVENTS_PATHS[emu.provider]:
                    return self._send(404, b"not found", "text/plain")
                if emu.raw is not None:
                    status, ctype, body = emu.raw
                    return self._send(status, body, ctype)
                fault = emu.fault
                if fault == "trickle":
                    body = emu.body()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for byte in body:
                        if emu._stop.wait(emu.trickle_seconds):
                            break
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            break
                    self.close_connection = True
                    return None
                if fault == "404":
                    return self._send(404, b"not found", "text/plain")
                if fault == "500":
                    return self._send(500, b"internal error", "text/plain")
                if fault == "hang":
                    emu._stop.wait(emu.hang_seconds)
                    return self._send(200, emu.body())
                if fault == "invalid-json":
                    return self._send(200, b'[{"event-id": "e-1", "event-type": ')
                if fault == "content-type":
                    return self._send(200, b"<html>captive portal</html>", "text/html")
                if fault == "huge":
                    return self._send(200, b"[" + b" " * (10 * 1024 * 1024) + b"]")
                if fault == "truncated":
                    body = emu.body()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body) + 100))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body[: max(1, len(body) // 2)])
                    self.close_connection = True
                    return None
                return self._send(200, emu.body())

        return Handler
