"""Unary gRPC calls over a unix socket, on the ``h2`` HTTP/2 state machine.

This is the part of gRPC's HTTP/2 mapping (``doc/PROTOCOL-HTTP2.md`` in grpc/grpc) that one
unary call needs: a POST with ``content-type: application/grpc``, ``te: trailers`` and
``grpc-timeout``, one length-prefixed message each way, and the status from ``grpc-status`` /
``grpc-message`` in the trailers (or in the headers of a trailers-only reply). HTTP/2 itself
(framing, HPACK, flow control, SETTINGS, PING) is h2's.

GOAWAY is ours: h2 4.x closes its whole connection on receiving one (python-hyper/h2 #1181), so
the reply to a stream the server promised to finish could not be read. We split frames before
h2 sees them, keep GOAWAY frames from it, finish the streams the server kept (what grpc-go
does on a graceful shutdown), then reconnect; a stream the server did not take is retried once
on a new connection when the refused connection was a reused one (gRPC's transparent retry).

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
import h2.errors
import h2.events
import h2.exceptions

from healthcheck.sdk.text import one_line

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
# headers, SETTINGS, PINGs; a server that never stops sending is cut off here.
REPLY_OVERHEAD = 1 << 20
FRAME_HEADER = 9
GOAWAY = 0x7
MAX_TEXT = 200  # bytes of anything the server sent that end up in a message
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
    if not (value.isascii() and value.isdigit() and len(value) <= 2):
        return "UNKNOWN"
    code = int(value)
    return STATUS_NAMES[code] if code < len(STATUS_NAMES) else "UNKNOWN"


def _message(value: str) -> str:
    if "%" in value:
        from urllib.parse import unquote

        value = unquote(value, errors="replace")
    return one_line(value, MAX_TEXT)


def _http_status_code(value: str) -> str:
    if len(value) == 3 and value.isascii() and value.isdigit():
        return HTTP_STATUS_CODES.get(int(value), "UNKNOWN")
    return "UNKNOWN"


def _error_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error code {code}"


class _Unprocessed(Exception):
    """The server's GOAWAY says it did not take our stream: a retry cannot run it twice."""


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
                shown = one_line(http_status, 20) or "missing"
                raise GrpcError(_http_status_code(http_status), f"unexpected HTTP status {shown}")
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
        with memoryview(body) as view:  # one copy of a reply that may be megabytes, not two
            return bytes(view[5:])


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
        self._inbox = bytearray()  # bytes of a frame not yet whole
        self._retiring = False  # GOAWAY or a hang-up seen: no new streams on this connection

    def close(self) -> None:
        """Close the connection (politely: GOAWAY first, when it is still up)."""
        sock, conn = self._sock, self._conn
        self._sock = self._conn = None
        self._inbox = bytearray()
        self._retiring = False
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
            except _Unprocessed as exc:
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
        if self._retiring:
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
        self._sock, self._conn = sock, conn
        return False

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
                self._feed(conn, data, 0, None)
        except BlockingIOError:
            pass
        except (OSError, GrpcError, h2.exceptions.H2Error, UnicodeDecodeError):
            return False
        if budget <= 0 or self._retiring:
            return False
        try:
            pending = conn.data_to_send()  # acknowledgements of what was read
            if pending:
                sock.settimeout(1.0)
                sock.sendall(pending)
        except OSError:
            return False
        return True

    def _exchange(self, method: str, request: bytes, deadline: float) -> _Reply:
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
            self._feed(conn, data, stream, reply)
            pending = conn.data_to_send()
            if pending:
                try:
                    sock.sendall(pending)
                except OSError:
                    if not reply.ended:
                        raise
                    # The reply is whole but the server already hung up: keep the reply,
                    # drop the connection.
                    self._retiring = True
        return reply

    def _feed(self, conn, data: bytes, stream: int, reply: _Reply | None) -> None:
        """Hand received bytes to h2, holding back GOAWAY frames (see the module docstring).

        Only frame headers are read here; runs of whole frames between GOAWAYs go to h2 in one
        call, and a partial frame waits in the inbox for the rest.
        """
        inbox = self._inbox
        inbox += data
        start = pos = 0
        while pos + FRAME_HEADER <= len(inbox):
            if inbox.startswith(b"HTTP/1.", pos):
                # Not a gRPC server at all; grpc-go reports a failed handshake as UNAVAILABLE.
                raise GrpcError("UNAVAILABLE", "the socket answers in HTTP/1.x, not HTTP/2")
            length = int.from_bytes(inbox[pos : pos + 3], "big")
            if length > conn.max_inbound_frame_size:
                # What h2 would say, before buffering a bogus length's worth of bytes.
                raise GrpcError(
                    "INTERNAL",
                    f"HTTP/2 protocol error: frame of {length} bytes "
                    f"over the {conn.max_inbound_frame_size}-byte limit",
                )
            end = pos + FRAME_HEADER + length
            if end > len(inbox):
                break
            if inbox[pos + 3] == GOAWAY:
                self._deliver(conn, inbox[start:pos], stream, reply)
                self._goaway(inbox[pos:end], stream)
                start = end
            pos = end
        self._deliver(conn, inbox[start:pos], stream, reply)
        del inbox[:pos]

    def _deliver(self, conn, frames: bytearray, stream: int, reply: _Reply | None) -> None:
        if frames:
            for event in conn.receive_data(frames):
                self._handle(conn, stream, event, reply)

    def _goaway(self, frame: bytearray, stream: int) -> None:
        stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF
        if stream_id != 0 or len(frame) < FRAME_HEADER + 8:
            raise GrpcError("INTERNAL", "HTTP/2 protocol error: malformed GOAWAY frame")
        last_stream = int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF
        error = _error_name(int.from_bytes(frame[13:17], "big"))
        self._retiring = True
        if stream and last_stream < stream:
            raise _Unprocessed(f"GOAWAY {error}")
        # Our stream is among those the server will still finish, whatever the error code says
        # (grpc-go does the same); if it closes the socket instead, that is UNAVAILABLE.

    def _handle(self, conn, stream: int, event, reply: _Reply | None) -> None:
        if reply is None or getattr(event, "stream_id", None) != stream:
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
