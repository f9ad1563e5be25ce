"""Unary gRPC calls over a unix socket, on the ``h2`` HTTP/2 state machine.

This is the part of gRPC's HTTP/2 mapping (``doc/PROTOCOL-HTTP2.md`` in grpc/grpc) that one
unary call needs: a POST with ``content-type: application/grpc``, ``te: trailers`` and
``grpc-timeout``, one length-prefixed message each way, and the status from ``grpc-status`` /
``grpc-message`` in the trailers (or in the headers of a trailers-only reply). HTTP/2 itself
(framing, HPACK, flow control, SETTINGS, PING, GOAWAY) is h2's.

Why not grpcio: the agent must fit in 60 MiB next to the Kubernetes client, and grpcio costs
11 MiB of resident memory there at import plus 4 MiB and six core threads at the first call,
for the three calls of the cri check (``bench/agent.py``). h2 is pure Python and adds 1.5 MiB.

Every call has a deadline; replies are bounded (``max_message``); failures raise
:class:`GrpcError` with gRPC's status names, so callers see what a grpcio client would.
"""

from __future__ import annotations

import math
import socket
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# gRPC's mapping for replies that are not HTTP 200 and carry no grpc-status
# (doc/http-grpc-status-mapping.md).
HTTP_STATUS_CODES = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}
# RST_STREAM codes as grpc-go maps them; anything else is INTERNAL.
RESET_CODES = {7: "UNAVAILABLE", 8: "CANCELLED", 11: "RESOURCE_EXHAUSTED", 12: "PERMISSION_DENIED"}
MAX_REQUEST = 16 << 10  # fits the first flow-control window and one frame: never waits to send
READ_SIZE = 64 << 10
# Bytes one reply may take beyond its message: headers (HPACK caps them at 64 KiB), frame
# headers, SETTINGS, PINGs. h2 buffers a frame whole before checking its length against the
# 16 KiB limit, so without this budget a peer could make us hold 16 MiB of one bogus frame.
REPLY_OVERHEAD = 1 << 20
USER_AGENT = "node-healthcheck"


class GrpcError(Exception):
    """A failed call; ``code`` is the gRPC status name (``UNAVAILABLE``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


def timeout_header(seconds: float) -> str:
    """``grpc-timeout``: at most 8 digits and a unit, rounded up so it never undercuts."""
    millis = max(1, math.ceil(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{min(math.ceil(seconds), 10**8 - 1)}S"


def _status_name(value: str) -> str:
    try:
        code = int(value)
    except ValueError:
        return "UNKNOWN"
    return STATUS_NAMES[code] if 0 <= code < len(STATUS_NAMES) else "UNKNOWN"


def _message(value: str) -> str:
    if "%" in value:
        from urllib.parse import unquote

        value = unquote(value, errors="replace")
    return " ".join(value.split())[:200]


class _Reply:
    """What one stream brought back: headers, body bytes, trailers, and how it ended."""

    __slots__ = ("body", "ended", "headers", "trailers")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.trailers: dict[str, str] = {}
        self.body = bytearray()
        self.ended = False

    def result(self, max_message: int) -> bytes:
        """The reply's one message, or :class:`GrpcError` as a grpcio client would raise."""
        status = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        http_status = self.headers.get(":status", "")
        if status is None:
            if http_status != "200":
                known = http_status.isdigit() and int(http_status) in HTTP_STATUS_CODES
                code = HTTP_STATUS_CODES[int(http_status)] if known else "UNKNOWN"
                raise GrpcError(code, f"unexpected HTTP status {http_status or 'missing'}")
            raise GrpcError("INTERNAL", "server closed the stream without sending trailers")
        code = _status_name(status)
        if code != "OK":
            message = self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))
            raise GrpcError(code, _message(message))
        if not self.headers.get("content-type", "").startswith("application/grpc"):
            raise GrpcError("INTERNAL", "reply content-type is not application/grpc")
        body = self.body
        if len(body) < 5:
            raise GrpcError("INTERNAL", "reply carries no message")
        if body[0] != 0:
            raise GrpcError("INTERNAL", "compressed reply although no encoding was offered")
        size = int.from_bytes(body[1:5], "big")
        if size > max_message:
            raise GrpcError("RESOURCE_EXHAUSTED", f"reply of {size} bytes > {max_message}")
        if len(body) != 5 + size:
            raise GrpcError("INTERNAL", "reply is not exactly one length-prefixed message")
        return bytes(body[5:])


class UnixChannel:
    """One HTTP/2 connection to a unix socket, opened at the first call; not thread-safe.

    A call that fails below gRPC (socket, HTTP/2, deadline) closes the connection, so the next
    call starts clean; a gRPC status error leaves it open, as it should.
    """

    def __init__(self, path: str, authority: str = "localhost", max_message: int = 4 << 20):
        self.path = path
        self.authority = authority
        self.max_message = max_message
        self._sock: socket.socket | None = None
        self._conn: h2.connection.H2Connection | None = None

    def close(self) -> None:
        """Close the connection (politely: GOAWAY first, when it is still up)."""
        sock, conn = self._sock, self._conn
        self._sock = self._conn = None
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
        try:
            reply = self._exchange(method, request, deadline)
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
            raise GrpcError("UNAVAILABLE", f"unix:{self.path}: {exc.strerror or exc}") from None
        except (h2.exceptions.H2Error, UnicodeDecodeError) as exc:  # bytes that are not HTTP/2
            self.close()
            raise GrpcError("INTERNAL", f"HTTP/2 protocol error: {exc}") from None
        return reply.result(self.max_message)

    def _remaining(self, deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _connect(self, deadline: float) -> tuple[socket.socket, h2.connection.H2Connection]:
        if self._sock is not None and self._conn is not None:
            return self._sock, self._conn
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
        self._sock, self._conn = sock, conn
        return sock, conn

    def _exchange(self, method: str, request: bytes, deadline: float) -> _Reply:
        sock, conn = self._connect(deadline)
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
        reply = _Reply()
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
            for event in conn.receive_data(data):
                self._handle(conn, stream, event, reply)
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
        return reply

    def _handle(self, conn, stream: int, event, reply: _Reply) -> None:
        if isinstance(event, h2.events.ConnectionTerminated):
            # GOAWAY: streams up to last_stream_id are still answered; ours may not be.
            if event.last_stream_id is None or event.last_stream_id < stream:
                code = getattr(event.error_code, "name", event.error_code)
                raise GrpcError("UNAVAILABLE", f"the runtime closed the connection (GOAWAY {code})")
            return
        if getattr(event, "stream_id", stream) != stream:
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
            raise GrpcError(code, f"stream reset by the runtime ({name})")
