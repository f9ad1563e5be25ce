"""Fixtures for the component checkers: real loopback HTTP servers, a unix-socket Engine API
server, and a recording stand-in for systemctl (no systemd runs on these machines)."""

from __future__ import annotations

import http.server
import json
import os
import socket
import socketserver
import stat
import sys
import threading
import time

import pytest

STANDIN = """#!{python}
# A stand-in for systemctl: records its argv, answers `show` from show.txt, exits with exit_code.
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
code = int(open(os.path.join(here, "exit_code")).read() or 0)
if sys.argv[1:2] == ["show"] and code == 0:
    with open(os.path.join(here, "show.txt")) as fh:
        text = fh.read()
    for line in text.splitlines():
        if line.startswith("AGO="):
            import time
            ago = float(line[4:])
            started = time.clock_gettime(time.CLOCK_MONOTONIC) - ago
            if started >= 0:
                print(f"InactiveExitTimestampMonotonic={{int(started * 1e6)}}")
                # A wall-clock form that disagrees: the checker must prefer the monotonic one.
                print("InactiveExitTimestamp=Mon 2024-01-01 10:00:00 UTC")
            else:
                # This machine booted less than `ago` seconds ago, so no monotonic timestamp can
                # say it; give the wall-clock form alone, which the checker then uses.
                stamp = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() - ago))
                print("InactiveExitTimestampMonotonic=")
                print(f"InactiveExitTimestamp={{stamp}}")
        else:
            print(line)
elif code:
    print("Failed to kill unit: simulated failure", file=sys.stderr)
sys.exit(code)
"""


class Systemctl:
    """A recording systemctl stand-in in its own directory."""

    def __init__(self, directory) -> None:
        self.dir = directory
        self.path = str(directory / "systemctl")
        self.path_obj = directory / "systemctl"
        self.path_obj.write_text(STANDIN.format(python=sys.executable))
        self.path_obj.chmod(self.path_obj.stat().st_mode | stat.S_IXUSR)
        self.exit_code(0)
        self.up_for(3600)

    def up_for(self, seconds: float) -> None:
        """``show`` reports a unit that left the inactive state ``seconds`` ago."""
        (self.dir / "show.txt").write_text(f"AGO={seconds}\n")

    def show_text(self, text: str) -> None:
        """``show`` prints exactly ``text``."""
        (self.dir / "show.txt").write_text(text)

    def exit_code(self, code: int) -> None:
        (self.dir / "exit_code").write_text(str(code))

    def calls(self) -> list[list[str]]:
        path = self.dir / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def kills(self) -> list[list[str]]:
        return [c for c in self.calls() if c and c[0] == "kill"]


@pytest.fixture
def systemctl(tmp_path):
    directory = tmp_path / "systemctl-standin"
    directory.mkdir()
    return Systemctl(directory)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        server.paths.append(self.path)
        mode = server.mode
        if mode == "hang":
            time.sleep(server.hang)
            return
        if mode == "close":
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, body = server.reply
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)


def _serve(server, mode, reply, hang):
    server.mode = mode
    server.reply = reply
    server.hang = hang
    server.paths = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def http_server():
    """Start a loopback HTTP server: ``http_server(mode, status, body, family)`` -> server.

    ``mode`` is ``reply`` (answer ``status``/``body``), ``hang`` (never answer) or ``close``
    (close the connection without a response). ``server.server_address[1]`` is its port.
    """
    servers = []

    def start(mode="reply", status=200, body=b"ok", family=socket.AF_INET, hang=30.0):
        cls = _TCPServer
        if family == socket.AF_INET6:
            cls = type("_TCP6Server", (_TCPServer,), {"address_family": socket.AF_INET6})
        host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        server = cls((host, 0), _Handler)
        servers.append(server)
        return _serve(server, mode, (status, body), hang)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def unix_http_server(tmp_path):
    """An HTTP server on a unix socket (the Docker Engine API's transport)."""
    servers = []

    def start(mode="reply", status=200, body=b"[]", hang=30.0):
        path = str(tmp_path / f"api{len(servers)}.sock")
        server = _UnixServer(path, _Handler)
        servers.append(server)
        server.socket_path = path
        return _serve(server, mode, (status, body), hang)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
        if os.path.exists(server.socket_path):
            os.unlink(server.socket_path)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory):
    """A real containerd (Debian's) with private root, state and socket; yields the socket."""
    import real_containerd

    yield from real_containerd.serve_for_tests(tmp_path_factory.mktemp("containerd"))


@pytest.fixture(scope="module")
def dockerd(containerd, tmp_path_factory):
    """A real dockerd (Debian's docker.io) on the private containerd; yields its API socket."""
    import shutil
    import subprocess

    import real_containerd

    if shutil.which("dockerd") is None:
        pytest.skip("dockerd is not installed (Debian package docker.io)")
    d = tmp_path_factory.mktemp("dockerd")
    socket_path = str(d / "docker.sock")
    log = open(d / "log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(d / "data"),
            "--exec-root",
            str(d / "exec"),
            "--pidfile",
            str(d / "pid"),
            "-H",
            f"unix://{socket_path}",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--containerd",
            containerd,
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    try:
        if not real_containerd.wait_for_socket(socket_path, proc, 60):
            pytest.skip(f"dockerd did not start here: {(d / 'log').read_text()[-300:]}")
        yield socket_path
    finally:
        real_containerd.stop(proc)
        log.close()
