"""grpcunary: unary gRPC over h2 against a real HTTP/2 server that answers as it is told.

The happy path against a real containerd is in tests/component/test_cri.py; here every way a
runtime can fail a call maps to the status a grpcio client would report, within the deadline,
with bounded reads, and the channel recovers for the next call.
"""

from __future__ import annotations

import socket
import time

import h2.errors
import pytest
from grpc_server import GrpcServer, Reply, grpc_frame

from healthcheck_plugins.component.grpcunary import (
    MAX_REQUEST,
    GrpcError,
    UnixChannel,
    timeout_header,
)

METHOD = "/runtime.v1.RuntimeService/Status"
# A DATA frame on stream 1 of 20,000 bytes: over HTTP/2's default 16,384-byte frame limit.
OVERLONG_DATA_FRAME = (20000).to_bytes(3, "big") + b"\0\0" + (1).to_bytes(4, "big") + b"x" * 20000


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(reply: Reply) -> GrpcServer:
        server = GrpcServer(str(tmp_path / f"grpc{len(servers)}.sock"), reply)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def call(server: GrpcServer, timeout: float = 5.0, max_message: int = 4 << 20) -> bytes:
    with UnixChannel(server.path, max_message=max_message) as channel:
        return channel.unary(METHOD, b"\x0a\x02v1", timeout)


def failure(server: GrpcServer, **kwargs) -> GrpcError:
    with pytest.raises(GrpcError) as info:
        call(server, **kwargs)
    return info.value


def test_a_reply_and_the_request_as_grpc_specifies_it(serve):
    server = serve(Reply(message=b"\x0a\x03abc"))
    assert call(server, timeout=2.5) == b"\x0a\x03abc"
    ((headers, body),) = server.requests
    assert headers[":method"] == "POST"
    assert headers[":path"] == METHOD
    assert headers["content-type"] == "application/grpc"
    assert headers["te"] == "trailers"
    assert headers["grpc-timeout"].endswith("m")
    assert 2000 < int(headers["grpc-timeout"][:-1]) <= 2500
    assert body == grpc_frame(b"\x0a\x02v1")


def test_calls_share_one_connection_and_an_empty_message_is_a_message(serve):
    server = serve(Reply(message=b""))
    with UnixChannel(server.path) as channel:
        assert channel.unary(METHOD, b"", 5) == b""
        assert channel.unary(METHOD, b"", 5) == b""
    assert len(server.requests) == 2
    assert len(server._clients) == 1


def test_a_reply_larger_than_the_flow_control_window_arrives_whole(serve):
    message = bytes(range(256)) * 4096  # 1 MiB, 16 times HTTP/2's initial window
    assert call(serve(Reply(message=message))) == message


def test_replies_over_the_limit_are_resource_exhausted(serve):
    error = failure(serve(Reply(message=b"x" * 5000)), max_message=1000)
    assert error.code == "RESOURCE_EXHAUSTED"
    # a length prefix that claims more than the limit, with a short body
    declared = (0).to_bytes(1, "big") + (10**9).to_bytes(4, "big") + b"x"
    error = failure(serve(Reply(raw_body=declared)))
    assert error.code == "RESOURCE_EXHAUSTED"


def test_a_bogus_frame_length_is_refused_from_its_header(serve):
    # A frame header claiming 16 MiB, then junk: h2 would buffer it all before judging it.
    junk = (2**24 - 1).to_bytes(3, "big") + b"\x00\x00" + (1).to_bytes(4, "big") + b"x" * (3 << 20)
    error = failure(serve(Reply(raw=junk)), max_message=1000)
    assert (error.code, error.message) == (
        "INTERNAL",
        "HTTP/2 protocol error: frame of 16777215 bytes over the 16384-byte limit",
    )


def _flood(frame_bytes: bytes, count: int) -> bytes:
    from hpack import Encoder
    from hyperframe.frame import HeadersFrame

    block = Encoder().encode([(":status", "200"), ("content-type", "application/grpc")])
    return HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize() + frame_bytes * count


def test_a_server_that_never_stops_sending_is_cut_off_at_the_byte_budget(serve):
    """Valid frames that carry nothing and need no answer (connection WINDOW_UPDATEs of 1 byte)
    add no message bytes, so only the per-reply byte budget stops them."""
    from hyperframe.frame import WindowUpdateFrame

    update = WindowUpdateFrame(0, window_increment=1).serialize()
    error = failure(serve(Reply(raw=_flood(update, 90_000))), max_message=1000)
    assert (error.code, error.message) == (
        "RESOURCE_EXHAUSTED",
        f"more than {1000 + (1 << 20)} bytes for one reply",
    )


def test_status_in_trailers_with_a_percent_encoded_message(serve):
    server = serve(Reply(message=None, status=5, grpc_message="no%20such%20sandbox%3A%20%E2%9C%93"))
    error = failure(server)
    assert (error.code, error.message) == ("NOT_FOUND", "no such sandbox: \u2713")
    assert str(error) == "NOT_FOUND: no such sandbox: \u2713"


def test_a_status_error_keeps_the_connection(serve):
    server = serve(Reply(message=None, status=9, grpc_message="busy"))
    with UnixChannel(server.path) as channel:
        for _ in range(2):
            with pytest.raises(GrpcError, match="FAILED_PRECONDITION: busy"):
                channel.unary(METHOD, b"", 5)
    assert len(server._clients) == 1


@pytest.mark.parametrize(
    ("reply", "code", "words"),
    [
        (Reply(status=14, grpc_message="shutting down", trailers_only=True), "UNAVAILABLE", "down"),
        (Reply(status=99, trailers_only=True), "UNKNOWN", ""),
        (Reply(status=None, http_status=503, trailers_only=True), "UNAVAILABLE", "HTTP status 503"),
        (Reply(status=None, http_status=404, trailers_only=True), "UNIMPLEMENTED", "404"),
        (Reply(status=None, http_status=500, trailers_only=True), "UNKNOWN", "500"),
        (Reply(status=None), "INTERNAL", "without sending trailers"),
        (Reply(content_type="text/html"), "INTERNAL", "content-type"),
        (Reply(content_type=b"application/grpc\xff"), "INTERNAL", "protocol error"),
        (Reply(message=b"abc", compressed=True), "INTERNAL", "compressed"),
        (Reply(message=None), "INTERNAL", "no message"),
        (Reply(raw_body=grpc_frame(b"a") + grpc_frame(b"b")), "INTERNAL", "exactly one"),
        (Reply(raw_body=grpc_frame(b"abcdef")[:-2]), "INTERNAL", "exactly one"),
        (Reply(reset=h2.errors.ErrorCodes.REFUSED_STREAM), "UNAVAILABLE", "REFUSED_STREAM"),
        (Reply(reset=h2.errors.ErrorCodes.CANCEL), "CANCELLED", "reset"),
        (Reply(reset=h2.errors.ErrorCodes.PROTOCOL_ERROR), "INTERNAL", "PROTOCOL_ERROR"),
        (Reply(goaway=True), "UNAVAILABLE", "GOAWAY"),
        (Reply(close=True), "UNAVAILABLE", "closed the connection"),
        (Reply(raw=b"HTTP/1.1 400 Bad Request\r\n\r\n", close=True), "UNAVAILABLE", "HTTP/1.x"),
        (Reply(raw=OVERLONG_DATA_FRAME), "INTERNAL", "HTTP/2 protocol error"),
    ],
)
def test_every_failure_maps_to_a_grpc_status(serve, reply, code, words):
    error = failure(serve(reply))
    assert error.code == code
    assert words in error.message
    assert "\n" not in str(error)


def test_a_silent_server_is_deadline_exceeded_within_the_deadline(serve):
    server = serve(Reply(hang=True))
    start = time.monotonic()
    error = failure(server, timeout=0.3)
    assert (error.code, error.message) == ("DEADLINE_EXCEEDED", "no reply within 0.3s")
    assert time.monotonic() - start < 5


def test_a_server_that_only_pings_cannot_hold_the_call_past_its_deadline(serve):
    server = serve(Reply(pings=100))
    start = time.monotonic()
    error = failure(server, timeout=0.4)
    assert error.code == "DEADLINE_EXCEEDED"
    assert time.monotonic() - start < 3


def test_a_socket_that_never_speaks_is_deadline_exceeded(tmp_path):
    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(1)
        with UnixChannel(path) as channel, pytest.raises(GrpcError, match="DEADLINE_EXCEEDED"):
            channel.unary(METHOD, b"", 0.2)


def test_the_channel_reconnects_after_a_broken_connection(serve):
    server = serve(Reply(close=True))
    with UnixChannel(server.path) as channel:
        with pytest.raises(GrpcError, match="UNAVAILABLE"):
            channel.unary(METHOD, b"", 5)
        server.reply = Reply(message=b"ok")
        assert channel.unary(METHOD, b"", 5) == b"ok"
    assert len(server._clients) == 2


def test_missing_and_dead_sockets_are_unavailable(tmp_path):
    absent = UnixChannel(str(tmp_path / "absent.sock"))
    with absent, pytest.raises(GrpcError, match=r"UNAVAILABLE: unix:.*No such file or directory"):
        absent.unary(METHOD, b"", 1)
    dead = str(tmp_path / "dead.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(dead)
    listener.close()
    refused = UnixChannel(dead)
    with refused, pytest.raises(GrpcError, match=r"UNAVAILABLE: unix:.*Connection refused"):
        refused.unary(METHOD, b"", 1)


def test_a_request_over_one_frame_is_refused_before_connecting(tmp_path):
    channel = UnixChannel(str(tmp_path / "absent.sock"))
    with channel, pytest.raises(ValueError, match="over"):
        channel.unary(METHOD, b"x" * MAX_REQUEST, 1)


@pytest.mark.parametrize(
    ("seconds", "header"),
    [
        (0.0001, "1m"),
        (0.5, "500m"),
        (2, "2000m"),
        (99999.998, "99999998m"),
        (99999.9999, "100000S"),
        (10**6, "1000000S"),
    ],
)
def test_grpc_timeout_header_is_rounded_up_and_at_most_eight_digits(seconds, header):
    assert timeout_header(seconds) == header


# ------------------------------------------------------------------------------------- GOAWAY


def test_a_graceful_goaway_before_the_reply_still_delivers_it(serve):
    """grpc-go's GracefulStop: GOAWAY naming our stream, then the reply (h2 alone would drop it)."""
    server = serve(Reply(message=b"ok", goaway_before=-1))
    with UnixChannel(server.path) as channel:
        assert channel.unary(METHOD, b"", 5) == b"ok"
        server.reply = Reply(message=b"again")
        assert channel.unary(METHOD, b"", 5) == b"again"  # on a new connection
    assert len(server._clients) == 2


def test_a_goaway_after_a_reply_sends_the_next_call_to_a_new_connection(serve):
    server = serve(Reply(message=b"ok", goaway_after=True))
    with UnixChannel(server.path) as channel:
        assert channel.unary(METHOD, b"", 5) == b"ok"
        server.reply = Reply(message=b"next")
        assert channel.unary(METHOD, b"", 5) == b"next"
    assert len(server._clients) == 2


def test_a_connection_closed_while_idle_is_replaced_before_the_next_call(serve):
    server = serve(Reply(message=b"ok", close_after=True))
    with UnixChannel(server.path) as channel:
        assert channel.unary(METHOD, b"", 5) == b"ok"
        time.sleep(0.1)  # the close reaches us while the channel sits idle
        server.reply = Reply(message=b"next")
        assert channel.unary(METHOD, b"", 5) == b"next"
    assert len(server._clients) == 2


def test_a_stream_refused_on_a_reused_connection_is_retried_once(serve):
    """gRPC's transparent retry: the GOAWAY says the server never took the stream."""
    server = serve(Reply(message=b"ok"))
    with UnixChannel(server.path) as channel:
        assert channel.unary(METHOD, b"", 5) == b"ok"
        server.queue.append(Reply(goaway_before=0))
        assert channel.unary(METHOD, b"", 5) == b"ok"
    assert len(server.requests) == 3
    assert len(server._clients) == 2


def test_a_stream_refused_on_a_new_connection_is_not_retried(serve):
    server = serve(Reply(goaway_before=0))
    error = failure(server)
    assert (error.code, error.message) == (
        "UNAVAILABLE",
        "the runtime refused the call (GOAWAY NO_ERROR)",
    )
    assert len(server.requests) == 1


# ----------------------------------------------------------------- what the server says, bounded


@pytest.mark.parametrize("status", ["\u00b200", "2" * 3000, "20\x1b[31m", "abc"])
def test_an_odd_http_status_is_unknown_and_shown_short_and_clean(serve, status):
    error = failure(serve(Reply(status=None, http_status=status, trailers_only=True)))
    assert error.code == "UNKNOWN"
    assert error.message.startswith("unexpected HTTP status ")
    assert len(error.message) <= 50
    assert error.message.isprintable()


def test_control_characters_in_grpc_message_never_reach_the_log_line(serve):
    error = failure(serve(Reply(status=13, grpc_message="bad%1b[31m%00red%07 " + "x" * 500)))
    assert error.code == "INTERNAL"
    # healthcheck.sdk.text.one_line, the one helper: control characters become spaces, 200 bytes
    assert error.message.startswith("bad [31m red  x")
    assert error.message.isprintable()
    assert len(error.message) == 200


def test_h2s_own_error_text_is_cut_short(serve):
    """h2 quotes the offending header in its error; a 10,000-character name must not follow."""
    from hpack import Encoder
    from hyperframe.frame import HeadersFrame

    block = Encoder().encode([(":status", "200"), ("X-" + "Y" * 10000, "v")])
    frame = HeadersFrame(1, data=block, flags=["END_HEADERS"]).serialize()
    error = failure(serve(Reply(raw=frame)))
    assert error.code == "INTERNAL"
    assert error.message.startswith("HTTP/2 protocol error: ")
    assert len(error.message) <= len("HTTP/2 protocol error: ") + 200
    assert error.message.isprintable()


def test_a_reply_of_the_maximum_size_is_copied_once_not_twice(serve):
    import tracemalloc

    size = 4 << 20
    body = grpc_frame(b"m" * size)  # built before measuring: the server thread shares our heap
    server = serve(Reply(raw_body=body))
    tracemalloc.start()
    try:
        assert len(call(server, max_message=size)) == size
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the bytearray it arrives in (growing) and the bytes returned: about 2.1x; a second copy
    # of the body would make it 3.1x
    assert peak < 2.6 * size
