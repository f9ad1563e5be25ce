"""A misbehaving gRPC server on a unix socket, for the faults a real containerd will not produce.

It speaks real HTTP/2 (h2's server side) and answers every unary call with what the test
asked for: a message, a status in trailers or trailers-only, a non-200 HTTP status, a stream
reset, a GOAWAY, silence, a closed connection, raw bytes (not HTTP/2, or a broken frame).
Well-behaved replies are checked against a real containerd in tests/component/test_cri.py; this
server exists for the failures. It records each request's headers and message.
"""

from __future__ import annotations

import contextlib
import socket
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events


def grpc_frame(message: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed gRPC message."""
    return bytes([int(compressed)]) + len(message).to_bytes(4, "big") + message


class Reply:
    """What to answer: the fields are applied in order (headers, data, trailers)."""

    def __init__(
        self,
        message: bytes | None = b"",
        status: int | None = 0,
        grpc_message: str = "",
        http_status: int = 200,
        content_type: str | bytes = "application/grpc",
        trailers_only: bool = False,
        compressed: bool = False,
        raw_body: bytes | None = None,
        reset: h2.errors.ErrorCodes | None = None,
        goaway: bool = False,
        hang: bool = False,
        raw: bytes = b"",
        close: bool = False,
    ) -> None:
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


class GrpcServer:
    """``GrpcServer(path, reply)`` serves until :meth:`stop`; ``requests`` lists what came in."""

    def __init__(self, path: str, reply: Reply) -> None:
        self.path = path
        self.reply = reply
        self.requests: list[tuple[dict[str, str], bytes]] = []
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
        except OSError:
            return

    def _answer(self, conn, client: socket.socket, stream: int) -> bool:
        """Queue the reply on ``conn``; False when the connection is to be dropped."""
        reply = self.reply
        if reply.hang:
            return True
        if reply.raw:
            client.sendall(reply.raw)
        if reply.close:
            client.close()
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
        return True

    @staticmethod
    def _send_body(conn, client: socket.socket, stream: int, body: bytes) -> None:
        """Send within the client's flow-control window, reading its WINDOW_UPDATEs."""
        while body:
            window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
            if window <= 0:
                client.sendall(conn.data_to_send())
                data = client.recv(65536)
                if not data:
                    raise OSError("client went away")
                conn.receive_data(data)
                continue
            conn.send_data(stream, body[:window])
            body = body[window:]
