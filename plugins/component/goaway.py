"""The GOAWAY gate between a socket and h2: graceful HTTP/2 shutdowns that h2 cannot follow."""

from __future__ import annotations

from collections.abc import Iterator

import h2.connection
import h2.errors
import h2.events

from healthcheck_plugins.component.grpcreply import GrpcError

FRAME_HEADER = 9
GOAWAY = 0x7


class Unprocessed(Exception):
    """The server's GOAWAY says it did not take our stream: a retry cannot run it twice."""


def _error_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error code {code}"


class GoawayGate:
    """Hands received bytes to an h2 connection, reading GOAWAY frames itself.

    Works around python-hyper/h2 issue #1181 ("Support graceful connection close", open): h2
    moves its connection state machine to CLOSED as soon as it receives a GOAWAY, so every frame
    after it raises instead of being delivered. RFC 9113 section 6.8 lets the sender finish the
    streams up to the GOAWAY's last-stream-id first, and grpc-go's graceful stop does exactly
    that: GOAWAY, then the replies to the calls it already took. Through h2 alone such a reply,
    which the server sent, would be lost.

    So the gate splits the bytes into frames before h2 sees them. Runs of whole frames between
    GOAWAYs go to h2 in one call; a GOAWAY frame is kept from h2 and read here: it marks the
    connection as retiring (:attr:`goaway_received`: no new streams on it), and when it says our
    stream was not taken (its id is above the last-stream-id) :class:`Unprocessed` is raised,
    so the caller may retry the call on a new connection (gRPC's transparent retry). A partial
    frame waits for the rest of its bytes.

    One gate per connection, as its inbox holds that connection's partial frame.
    """

    __slots__ = ("_inbox", "conn", "goaway_received")

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self.conn = conn
        self.goaway_received = False
        self._inbox = bytearray()  # bytes of a frame not yet whole

    def receive(self, data: bytes, stream: int) -> Iterator[h2.events.Event]:
        """h2's events for ``data``, in order, with GOAWAY frames read by the gate.

        ``stream`` is the call's stream id (0: none in flight). Raises :class:`Unprocessed`
        (see the class docstring) and :class:`GrpcError` for bytes that are not HTTP/2 or a
        frame longer than h2 accepts, before buffering a bogus length's worth of bytes.
        """
        conn, inbox = self.conn, self._inbox
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
                yield from self._deliver(inbox[start:pos])
                self._goaway(inbox[pos:end], stream)
                start = end
            pos = end
        yield from self._deliver(inbox[start:pos])
        del inbox[:pos]

    def _deliver(self, frames: bytearray) -> list[h2.events.Event]:
        return self.conn.receive_data(frames) if frames else []

    def _goaway(self, frame: bytearray, stream: int) -> None:
        stream_id = int.from_bytes(frame[5:9], "big") & 0x7FFFFFFF
        if stream_id != 0 or len(frame) < FRAME_HEADER + 8:
            raise GrpcError("INTERNAL", "HTTP/2 protocol error: malformed GOAWAY frame")
        last_stream = int.from_bytes(frame[9:13], "big") & 0x7FFFFFFF
        error = _error_name(int.from_bytes(frame[13:17], "big"))
        self.goaway_received = True
        if stream and last_stream < stream:
            raise Unprocessed(f"GOAWAY {error}")
        # Our stream is among those the server will still finish, whatever the error code says
        # (grpc-go does the same); if it closes the socket instead, that is UNAVAILABLE.
