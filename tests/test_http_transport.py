"""healthcheck.sdk.http's transport on _socket: TCP over IPv4 and IPv6 loopback, a unix socket,
and connection errors as one-line HttpError (real servers, no doubles)."""

from __future__ import annotations

import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from healthcheck.sdk.http import Connection, HttpError, request


class _Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = f"hello {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _UnixHello(_Hello):
    disable_nagle_algorithm = False  # TCP_NODELAY does not exist on a unix socket


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def _serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_tcp_ipv4_keeps_one_connection():
    server = _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Hello))
    try:
        with Connection("127.0.0.1", server.server_address[1]) as conn:
            for n in range(3):
                assert conn.request("GET", f"/{n}").body == f"hello /{n}".encode()
            assert conn.connects == 1
    finally:
        server.shutdown()
        server.server_close()


def test_tcp_ipv6_loopback():
    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6

    try:
        server = _serve(V6(("::1", 0), _Hello))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    try:
        resp = request("GET", f"http://[::1]:{server.server_address[1]}/six")
        assert resp.status == 200 and resp.body == b"hello /six"
    finally:
        server.shutdown()
        server.server_close()


def test_unix_socket(tmp_path):
    path = str(tmp_path / "api.sock")
    server = _serve(_UnixServer(path, _UnixHello))
    try:
        resp = request("GET", "/_ping", unix_socket=path)
        assert resp.status == 200 and resp.body == b"hello /_ping"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/", "cannot connect to 127.0.0.1:9: Connection refused"),
        ("http://no-such-host.invalid/", "cannot connect to no-such-host.invalid:80"),
    ],
)
def test_connect_errors_are_one_line(url, words):
    with pytest.raises(HttpError, match=words):
        request("GET", url, timeout=2)


def test_missing_unix_socket(tmp_path):
    with pytest.raises(HttpError, match=r"cannot connect to .*absent\.sock: No such file"):
        request("GET", "/", unix_socket=str(tmp_path / "absent.sock"))
