"""Unary gRPC calls over a unix socket, on the ``h2`` HTTP/2 state machine.

This is the part of gRPC's HTTP/2 mapping (``doc/PROTOCOL-HTTP2.md`` in grpc/grpc) that one
unary call needs: a POST with ``content-type: application/grpc``, ``te: trailers`` and
``grpc-timeout``, one length-prefixed message each way, and the status of the reply
(:mod:`.grpcreply`). HTTP/2 itself (framing, HPACK, flow control, SETTINGS, PING) is h2's, but
for GOAWAY, which :class:`~.goaway.GoawayGate` reads before h2 can close the whole connection on
it (python-hyper/h2 #1181): the streams the server kept are finished (what grpc-go does on a
graceful shutdown), then the next call reconnects; a stream the server did not take is retried
once on a new connection when the refused connection was a reused one (gRPC's transparent retry).

Why not grpcio: the agent must fit in 60 MiB next to the Kubernetes client, and grpcio costs
11 MiB of resident memory there at import plus 4 MiB and six core threads at the first call,
for the three calls of the cri check (``bench/agent.py``). h2 is pure Python and adds 1.5 MiB.

Every call has a deadline; replies are bounded (``max_message``); failures raise
:class:`GrpcError` with gRPC's status names, so callers see what a grpcio client would.
"""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from healthcheck.sdk.text import one_line
from healthcheck_plugins.component.goaway import GoawayGate, Unprocessed
from healthcheck_plugins.component.grpcreply import (
    MAX_TEXT,
    RESET_CODES,
    STATUS_NAMES,
    GrpcError,
    Reply,
    timeout_header,
)

# GrpcError, STATUS_NAMES and timeout_header are this module's API as before the split (criapi
# and the tests import them from here).
__all__ = ["MAX_REQUEST", "STATUS_NAMES", "GrpcError", "UnixChannel", "timeout_header"]

MAX_REQUEST = 16 << 10  # fits the first flow-control window and one frame: never waits to send
READ_SIZE = 64 << 10
# Bytes one reply may take beyond its message: headers (HPACK caps them at 64 KiB), frame
# headers, SETTINGS, PINGs; a server that never stops sending is cut off here.
REPLY_OVERHEAD = 1 << 20
USER_AGENT = "node-healthcheck"


class UnixChannel:
    """One HTTP/2 connection to a unix socket, opened at the first call; not thread-safe.

    A call that fails below gRPC (socket, HTTP/2, deadline) closes the connection, so the next
    call starts clean; a gRPC status error leaves it open, as it should. Before a connection is
    reused, whatever the server sent while it sat idle is read: a GOAWAY or a close there means
    the next call goes to a new connection.
    """

    def __init__(self, path: str, authority: str = "localhost", max_message: int = 4 << 20):
        self.path = path
        self.authority = authority
        self.max_message = max_message
        self._sock: socket.socket | None = None
        self._conn: h2.connection.H2Connection | None = None
        self._gate: GoawayGate | None = None  # the connection's received bytes go through it
        self._hung_up = False  # the server hung up after a whole reply

    def close(self) -> None:
        """Close the connection (politely: GOAWAY first, when it is still up)."""
        sock, conn = self._sock, self._conn
        self._sock = self._conn = self._gate = None
        self._hung_up = False
        if sock is None:
            return
        try:
            if conn is not None:
                conn.close_connection()
                sock.settimeout(0.1)
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.H2Error):
            pass
        finally:
            sock.close()

    def __enter__(self) -> UnixChannel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def unary(self, method: str, request: bytes, timeout: float) -> bytes:
        """Call ``method`` (``/package.Service/Method``) with one serialized request message."""
        if len(request) + 5 > MAX_REQUEST:
            raise ValueError(f"request of {len(request)} bytes is over {MAX_REQUEST - 5}")
        deadline = time.monotonic() + timeout
        retried = False
        while True:
            try:
                reused = self._connect(deadline)
                reply = self._exchange(method, request, deadline)
                break
            except Unprocessed as exc:
                self.close()
                if reused and not retried:
                    retried = True
                    continue
                raise GrpcError("UNAVAILABLE", f"the runtime refused the call ({exc})") from None
            except GrpcError:
                self.close()
                raise
            except TimeoutError:
                self.close()
                raise GrpcError("DEADLINE_EXCEEDED", f"no reply within {timeout:g}s") from None
            except (BrokenPipeError, ConnectionResetError):
                self.close()
                raise GrpcError("UNAVAILABLE", "the runtime closed the connection") from None
            except OSError as exc:
                self.close()
                reason = one_line(exc.strerror or exc, MAX_TEXT)
                raise GrpcError("UNAVAILABLE", f"unix:{self.path}: {reason}") from None
            except (h2.exceptions.H2Error, UnicodeDecodeError) as exc:  # bytes that are not HTTP/2
                self.close()
                raise GrpcError(
                    "INTERNAL", f"HTTP/2 protocol error: {one_line(exc, MAX_TEXT)}"
                ) from None
        if self._retiring():
            self.close()  # the server kept our stream but will take no more on this connection
        return reply.result(self.max_message)

    def _remaining(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _connect(self, deadline: float) -> bool:
        """Make sure a usable connection is open; True when it is one opened before."""
        if self._sock is not None:
            if self._still_usable():
                return True
            self.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self._remaining(deadline))
            sock.connect(self.path)
            conn = h2.connection.H2Connection(
                h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
            )
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
        except BaseException:
            sock.close()
            raise
        self._sock, self._conn, self._gate = sock, conn, GoawayGate(conn)
        return False

    def _retiring(self) -> bool:
        """A GOAWAY or a hang-up was seen: no new streams on this connection."""
        return self._hung_up or (self._gate is not None and self._gate.goaway_received)

    def _still_usable(self) -> bool:
        """Read what arrived while the connection sat idle (PINGs, SETTINGS, GOAWAY, a close)."""
        sock, conn = self._sock, self._conn
        budget = REPLY_OVERHEAD
        try:
            sock.setblocking(False)
            while budget > 0:
                data = sock.recv(READ_SIZE)
                if not data:
                    return False
                budget -= len(data)
                for _ in self._gate.receive(data, 0):
                    pass  # no call in flight: h2 only answers PINGs and SETTINGS
        except BlockingIOError:
            pass
        except (OSError, GrpcError, h2.exceptions.H2Error, UnicodeDecodeError):
            return False
        if budget <= 0 or self._retiring():
            return False
        try:
            pending = conn.data_to_send()  # acknowledgements of what was read
            if pending:
                sock.settimeout(1.0)
                sock.sendall(pending)
        except OSError:
            return False
        return True

    def _exchange(self, method: str, request: bytes, deadline: float) -> Reply:
        sock, conn = self._sock, self._conn
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", method),
                (":authority", self.authority),
                ("te", "trailers"),
                ("content-type", "application/grpc"),
                ("user-agent", USER_AGENT),
                ("grpc-timeout", timeout_header(deadline - time.monotonic())),
            ],
        )
        conn.send_data(stream, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True)
        sock.settimeout(self._remaining(deadline))
        sock.sendall(conn.data_to_send())
        reply = Reply()
        budget = self.max_message + REPLY_OVERHEAD
        while not reply.ended:
            sock.settimeout(self._remaining(deadline))
            data = sock.recv(READ_SIZE)
            if not data:
                raise GrpcError("UNAVAILABLE", "the runtime closed the connection")
            budget -= len(data)
            if budget < 0:
                limit = self.max_message + REPLY_OVERHEAD
                raise GrpcError("RESOURCE_EXHAUSTED", f"more than {limit} bytes for one reply")
            for event in self._gate.receive(data, stream):
                self._handle(conn, stream, event, reply)
            pending = conn.data_to_send()
            if pending:
                try:
                    sock.sendall(pending)
                except OSError:
                    if not reply.ended:
                        raise
                    # The reply is whole but the server already hung up: keep the reply,
                    # drop the connection.
                    self._hung_up = True
        return reply

    def _handle(self, conn, stream: int, event, reply: Reply) -> None:
        if getattr(event, "stream_id", None) != stream:
            return
        if isinstance(event, h2.events.ResponseReceived):
            reply.headers = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            conn.acknowledge_received_data(event.flow_controlled_length, stream)
            reply.body += event.data
            if len(reply.body) > self.max_message + 5:
                raise GrpcError("RESOURCE_EXHAUSTED", f"reply over {self.max_message} bytes")
        elif isinstance(event, h2.events.TrailersReceived):
            reply.trailers = dict(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            reply.ended = True
        elif isinstance(event, h2.events.StreamReset):
            code = RESET_CODES.get(int(event.error_code), "INTERNAL")
            name = getattr(event.error_code, "name", event.error_code)
            who = "by the runtime" if event.remote_reset else "after a protocol error"
            raise GrpcError(code, f"stream reset {who} ({name})")
