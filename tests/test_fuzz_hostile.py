"""Issue 11: hypothesis against the parsers that take outside input here: the agent's YAML
config, ``healthcheck check``'s command line, HTTP response heads and gRPC (HTTP/2) frames.

Whatever the input: only the documented error type (or exit code 0/1/2), at most one line
of at most 80 bytes on protocol stdout, one bounded line in any error, no traceback, and
bounded time (hypothesis's deadline per example) and memory (the process's peak RSS).
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import tempfile
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcheck import _host as host
from healthcheck._agent.config import ConfigError, load_config

SLOW = settings(
    max_examples=150,
    deadline=5000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def catalog():
    return {name: lc.checker for name, lc in host.discover().checkers.items()}


@pytest.fixture(scope="module")
def rss_budget():
    """The whole module may grow the test process by at most 200 MiB."""
    before = peak_rss_mib()
    yield
    assert peak_rss_mib() - before < 200


# ------------------------------------------------------------------------------ YAML config

KEYS = [
    "checks", "heartbeatPeriod", "eventNamespace", "metrics", "server", "checker", "name",
    "options", "interval", "timeout", "type", "condition", "reason", "healthyReason",
    "healthyMessage", "path", "args", "maxOutputLength", "threshold", "proc-root", "<<",
]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from(
        [
            "conntrack",
            "kubelet",
            "30s",
            "1ns",
            "2562047h",
            "1e400",
            "-1",
            "٣",
            "²",
            "0x10",
            "permanent",
            "temporary",
            "~",
            "null",
            "yes",
            "2001-02-30",
            "!!binary AA",
            "*a",
            "&a x",
            "!!set {a}",
            "'\\n'",
            '"\\x1b"',
            "[",
            "{",
            "127.0.0.1:²",
            "",
        ]
    ),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=20),
)


@st.composite
def yaml_documents(draw, depth=0):
    """YAML-shaped text: mappings, sequences, flow and block style, anchors and aliases."""
    kind = draw(
        st.sampled_from(["scalar", "map", "seq", "flow", "raw"] if depth < 3 else ["scalar"])
    )
    indent = "  " * depth
    if kind == "scalar":
        return draw(SCALARS)
    if kind == "raw":
        return draw(st.text(alphabet="[]{}&*!:,-?|>'\"\n #%@`\\aA0", max_size=40))
    if kind == "flow":
        items = draw(st.lists(st.tuples(st.sampled_from(KEYS), SCALARS), max_size=4))
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if kind == "seq":
        items = draw(st.lists(yaml_documents(depth + 1), max_size=3))
        return "\n" + "".join(f"{indent}- {item}\n" for item in items)
    items = draw(st.lists(st.tuples(st.sampled_from(KEYS), yaml_documents(depth + 1)), max_size=4))
    return "\n" + "".join(f"{indent}{k}: {v}\n" for k, v in items)


@SLOW
@given(yaml_documents())
def test_any_config_is_accepted_or_one_config_error(catalog, rss_budget, text):
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(text)
        try:
            load_config(path, catalog)
        except ConfigError as exc:
            message = str(exc)
            assert "\n" not in message and "\r" not in message
            assert len(message.encode("utf-8", "surrogatepass")) <= 2048
    finally:
        os.unlink(path)


# ----------------------------------------------------------------------- check command line

FLAGS = ["--timeout", "--max-output-length", "--json", "--js", "--threshold", "-v", "--help",
         "--proc-root", "--", "conntrack", "-", "=", "--threshold=٣"]  # fmt: skip


@SLOW
@given(st.lists(st.one_of(st.sampled_from(FLAGS), st.text(max_size=30)), max_size=6))
def test_check_command_lines_keep_the_protocol(capfd, rss_budget, argv):
    from healthcheck import _cli as cli

    try:
        code = cli.main(["check", "conntrack", *argv])
    except SystemExit as exc:  # argparse's --help
        code = exc.code
    out, err = capfd.readouterr()
    assert code in (0, 1, 2)
    assert "Traceback" not in err
    helped = any(a in ("-h", "--help") or (len(a) > 3 and "--help".startswith(a)) for a in argv)
    if helped and code == 0:
        return
    assert out.count("\n") <= 1, out
    line = out.rstrip("\n")
    if line.startswith("{"):
        import json

        line = json.loads(line)["message"]
    assert len(line.encode("utf-8", "surrogateescape")) <= 80
    assert line.isprintable()


# ---------------------------------------------------------------------------- HTTP heads


def _serve_once(payload: bytes) -> tuple[str, threading.Thread]:
    """A unix socket that takes one connection, reads what the client sends first (an HTTP
    request, or HTTP/2's preface, SETTINGS and request), answers ``payload`` and closes."""
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "s")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)

    def run():
        with listener:
            listener.settimeout(5)
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.settimeout(2)
                conn.recv(65536)
                conn.sendall(payload)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return path, thread


DIGITS = st.text(alphabet="0123456789²٣٠ +-_abcdefx", min_size=0, max_size=8)
HEADER_NAMES = st.sampled_from(
    ["Content-Length", "Transfer-Encoding", "Connection", "X-Y", "", " Content-Length"]
)


@st.composite
def responses(draw):
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "http/1.1", "HTTP/1.1x"]))
    status = draw(st.one_of(st.sampled_from(["200", "100", "204", "500"]), DIGITS))
    reason = draw(st.text(max_size=20))
    head = f"{version} {status} {reason}\r\n"
    for _ in range(draw(st.integers(0, 4))):
        name = draw(HEADER_NAMES)
        value = draw(st.one_of(DIGITS, st.sampled_from(["chunked", "close", "gzip, chunked"])))
        head += f"{name}: {value}\r\n"
    body = draw(
        st.one_of(
            st.binary(max_size=64),
            st.lists(st.tuples(DIGITS, st.binary(max_size=16)), max_size=3).map(
                lambda chunks: "".join(f"{n}\r\n" for n, _ in chunks).encode() + b"0\r\n\r\n"
            ),
        )
    )
    tail = draw(st.sampled_from(["\r\n", "", "\n", "\r\n\r\n"]))
    return (head + tail).encode("utf-8", "surrogatepass") + body


@SLOW
@given(responses())
def test_any_response_is_a_response_or_one_http_error(rss_budget, reply):
    from healthcheck.sdk import http

    path, thread = _serve_once(reply)
    try:
        response = http.request("GET", "/x", unix_socket=path, timeout=2, max_body=1 << 16)
    except http.HttpError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message and len(message.encode()) <= 300
    else:
        assert 100 <= response.status <= 999
        assert response.reason.isprintable() and len(response.body) <= 1 << 16
    thread.join(5)


# ---------------------------------------------------------------------------- gRPC frames

FRAME_TYPES = st.integers(0, 12)


@st.composite
def frame_runs(draw):
    """A server's side of a connection: SETTINGS, then frames of any type, flags and length."""
    out = bytearray(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # empty SETTINGS
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(FRAME_TYPES)
        flags = draw(st.sampled_from([0, 1, 4, 5, 8, 0x20, 0xFF]))
        stream = draw(st.sampled_from([0, 1, 3, 0x7FFFFFFF]))
        payload = draw(st.binary(max_size=40))
        length = draw(st.one_of(st.just(len(payload)), st.integers(0, (1 << 24) - 1)))
        out += length.to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big")
        out += payload
    if draw(st.booleans()):
        out += draw(st.binary(max_size=30))
    return bytes(out)


@SLOW
@given(frame_runs())
def test_any_frames_are_a_reply_or_one_grpc_error(rss_budget, frames):
    from healthcheck_plugins.component.grpcunary import STATUS_NAMES, GrpcError, UnixChannel

    path, thread = _serve_once(frames)
    with UnixChannel(path, max_message=1 << 16) as channel:
        try:
            channel.unary("/runtime.v1.RuntimeService/Version", b"\x0a\x02v1", 1.0)
        except GrpcError as exc:
            assert exc.code in STATUS_NAMES
            assert exc.message.isprintable() and len(exc.message.encode()) <= 300
    thread.join(5)
