"""A misbehaving gRPC server on a unix socket, for the faults a real containerd will not produce.

It speaks real HTTP/2 (h2's server side) and answers every unary call with what the test
asked for: a message, a status in trailers or trailers-only, a non-200 HTTP status, a stream
reset, a GOAWAY (refusing the stream, or graceful: before or after a reply it still sends),
silence, PINGs and nothing else, a closed connection, raw bytes (not HTTP/2, or a broken frame).
Well-behaved replies are checked against a real containerd in tests/component/test_cri.py; this
server exists for the failures. It records each request's headers and message.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from hyperframe.frame import GoAwayFrame


def grpc_frame(message: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed gRPC message."""
    return bytes([int(compressed)]) + len(message).to_bytes(4, "big") + message


def goaway_frame(last_stream_id: int, error_code: int = 0) -> bytes:
    """A GOAWAY frame, written past h2's server side (which sends nothing after its own)."""
    frame = GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code)
    return frame.serialize()


class Reply:
    """What to answer: the fields are applied in order (headers, data, trailers)."""

    def __init__(
        self,
        message: bytes | None = b"",
        status: int | None = 0,
        grpc_message: str = "",
        http_status: int | str = 200,
        content_type: str | bytes = "application/grpc",
        trailers_only: bool = False,
        compressed: bool = False,
        raw_body: bytes | None = None,
        reset: h2.errors.ErrorCodes | None = None,
        goaway: bool = False,
        hang: bool = False,
        raw: bytes = b"",
        close: bool = False,
        goaway_before: int | None = None,
        goaway_after: bool = False,
        close_after: bool = False,
        pings: int = 0,
    ) -> None:
        """``goaway_before``: a GOAWAY with that last stream id (-1: the request's) precedes
        the reply; ``goaway_after``: a graceful GOAWAY follows it in the same write;
        ``close_after``: the connection is closed once the reply is out; ``pings``: instead of
        answering, send that many PINGs 50 ms apart."""
        self.message = message
        self.status = status
        self.grpc_message = grpc_message
        self.http_status = http_status
        self.content_type = content_type
        self.trailers_only = trailers_only
        self.compressed = compressed
        self.raw_body = raw_body
        self.reset = reset
        self.goaway = goaway
        self.hang = hang
        self.raw = raw
        self.close = close
        self.goaway_before = goaway_before
        self.goaway_after = goaway_after
        self.close_after = close_after
        self.pings = pings


class GrpcServer:
    """``GrpcServer(path, reply)`` serves until :meth:`stop`; ``requests`` lists what came in."""

    def __init__(self, path: str, reply: Reply) -> None:
        self.path = path
        self.reply = reply
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.queue: list[Reply] = []  # answers for the next requests, before ``reply``
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        self._listener.listen(8)
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        self._listener.close()
        for client in self._clients:
            client.close()
        self._thread.join(5)

    def __enter__(self) -> GrpcServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._clients.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        conn.initiate_connection()
        headers: dict[int, dict[str, str]] = {}
        bodies: dict[int, bytearray] = {}
        try:
            client.sendall(conn.data_to_send())
            while not self._stop.is_set():
                data = client.recv(65536)
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        headers[event.stream_id] = dict(event.headers)
                        bodies[event.stream_id] = bytearray()
                    elif isinstance(event, h2.events.DataReceived):
                        bodies[event.stream_id] += event.data
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        stream = event.stream_id
                        self.requests.append((headers[stream], bytes(bodies[stream])))
                        if not self._answer(conn, client, stream):
                            return
                client.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            # The client went away, or spoke after our GOAWAY (h2 refuses anything then).
            return

    def _answer(self, conn, client: socket.socket, stream: int) -> bool:
        """Queue the reply on ``conn``; False when the connection is to be dropped."""
        reply = self.queue.pop(0) if self.queue else self.reply
        if reply.hang:
            return True
        if reply.pings:
            for n in range(reply.pings):
                conn.ping(n.to_bytes(8, "big"))
                client.sendall(conn.data_to_send())
                time.sleep(0.05)
            return True
        if reply.goaway_before is not None:
            last = stream if reply.goaway_before == -1 else reply.goaway_before
            client.sendall(conn.data_to_send() + goaway_frame(last))
            if last < stream:
                return True
        if reply.raw:
            client.sendall(reply.raw)
        if reply.close:
            _lingering_close(client)
            return False
        if reply.raw:
            return True
        if reply.goaway:
            conn.close_connection(last_stream_id=0)
            return True
        if reply.reset is not None:
            conn.reset_stream(stream, reply.reset)
            return True
        response = [(":status", str(reply.http_status)), ("content-type", reply.content_type)]
        status = []
        if reply.status is not None:
            status = [("grpc-status", str(reply.status))]
            if reply.grpc_message:
                status.append(("grpc-message", reply.grpc_message))
        if reply.trailers_only:
            conn.send_headers(stream, response + status, end_stream=True)
            return True
        conn.send_headers(stream, response)
        body = reply.raw_body
        if body is None and reply.message is not None:
            body = grpc_frame(reply.message, reply.compressed)
        if body:
            self._send_body(conn, client, stream, body)
        if status:
            conn.send_headers(stream, status, end_stream=True)
        else:
            conn.end_stream(stream)
        if reply.goaway_after:
            client.sendall(conn.data_to_send() + goaway_frame(stream))
        if reply.close_after:
            client.sendall(conn.data_to_send())
            client.close()
            return False
        return True

    @staticmethod
    def _send_body(conn, client: socket.socket, stream: int, body: bytes) -> None:
        """Send within the client's flow-control window, reading its WINDOW_UPDATEs."""
        body = memoryview(body)  # slices without copying a reply of megabytes
        while body:
            window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            if window <= 0:
                client.sendall(conn.data_to_send())
                data = client.recv(65536)
                if not data:
                    raise OSError("client went away")
                conn.receive_data(data)
                continue
            conn.send_data(stream, bytes(body[:window]))
            body = body[window:]


def _lingering_close(client: socket.socket) -> None:
    """Close as real servers do (Go's net/http, nginx): FIN first, then read what the client
    still sends until it closes too (at most 1 s). A plain close with unread bytes queued sends
    an RST, and the client's kernel may then drop the reply it had not read yet, so the test
    would see "closed the connection" instead of the reply it is about."""
    try:
        client.shutdown(socket.SHUT_WR)
        client.settimeout(1.0)
        while client.recv(65536):
            pass
    except OSError:
        pass
    finally:
        client.close()
