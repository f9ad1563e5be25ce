"""NPD's local server: ``/healthz`` answers ``ok``, ``/conditions`` the conditions as JSON.

Both this server and the metrics listener (:mod:`healthcheck._agent.metrics`) are
:class:`BoundedServer` s: the shipped DaemonSet uses hostNetwork, so anyone on the node can open
connections to them. At most :data:`MAX_CONNECTIONS` are served at once (more are closed as
they are accepted), a connection idle for :data:`IDLE_TIMEOUT` is dropped, and one that is
still open :data:`REQUEST_DEADLINE` after it was accepted (a client trickling its request a byte
at a time) is shut down, so idle sockets cost neither threads nor memory.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import TYPE_CHECKING, Any

from healthcheck._agent.clock import rfc3339
from healthcheck._agent.conditions import ConditionTable, NodeCondition

if TYPE_CHECKING:
    # The server class BoundedServer is mixed into, as the type checker sees it.
    _ServerBase = TCPServer
    # Remediation is loaded only when configured; here its type is needed, not the module.
    from healthcheck._agent.remediation.controller import Controller
else:
    _ServerBase = object

MAX_CONNECTIONS = 16
IDLE_TIMEOUT = 5.0
REQUEST_DEADLINE = 10.0


class BoundedServer(ThreadingMixIn, _ServerBase):
    """A thread per connection, but at most :data:`MAX_CONNECTIONS` of them, each bounded in
    time; mix in before an ``HTTPServer`` (or ``WSGIServer``). Handlers should set
    ``timeout = IDLE_TIMEOUT``."""

    daemon_threads = True
    block_on_close = False
    max_connections = MAX_CONNECTIONS
    request_deadline = REQUEST_DEADLINE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self._active: dict[socket.socket, float] = {}
        self._active_lock = threading.Lock()
        self.refused = 0  # connections closed at once because every slot was taken
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        with self._active_lock:
            self._active[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: Any) -> None:
        with self._active_lock:
            if self._active.pop(request, None) is not None:
                self._slots.release()

    def service_actions(self) -> None:
        """Called by ``serve_forever`` about twice a second: end connections past their
        deadline (their handler thread then sees the socket closed and returns)."""
        super().service_actions()
        expired_before = time.monotonic() - self.request_deadline
        with self._active_lock:
            expired = [s for s, started in self._active.items() if started < expired_before]
        for sock in expired:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away (or was cut off) is not worth a traceback on stderr


def family_of(host: str) -> int:
    """AF_INET6 for an IPv6 literal, else AF_INET."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def conditions_json(
    conditions: Iterable[NodeCondition], remediation: Controller | None = None
) -> bytes:
    """The conditions as NPD's condition manager lists them (a JSON array); with
    ``remediation`` (a running controller) one more entry carries its state."""
    extra = []
    if remediation is not None:
        # Here, not at the top: the remediation modules are loaded only when it is configured.
        from healthcheck._agent.remediation.wiring import conditions_entry

        extra.append(conditions_entry(remediation.snapshot()))
    return json.dumps(
        [
            {
                "type": c.type,
                "status": c.status,
                "lastTransitionTime": rfc3339(c.transition),
                "reason": c.reason,
                "message": c.message,
            }
            for c in conditions
        ]
        + extra
    ).encode()


def serve(
    address: tuple[str, int], table: ConditionTable, remediation: Controller | None = None
) -> HTTPServer:
    """Start the server on ``address`` in a daemon thread and return it."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "node-healthcheck"
        timeout = IDLE_TIMEOUT

        def do_GET(self) -> None:
            if self.path == "/healthz":
                body, kind = b"ok", "text/plain; charset=utf-8"
            elif self.path == "/conditions":
                body = conditions_json(table.snapshot()[1], remediation)
                kind = "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # access logs would drown the agent's own lines

    class Server(BoundedServer, HTTPServer):
        address_family = family_of(address[0])

    server = Server(address, Handler)
    threading.Thread(target=server.serve_forever, name="server", daemon=True).start()
    return server
