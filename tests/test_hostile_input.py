"""Issue 11, invariants 1-3: small hostile input costs little, numbers are bounded where they
are parsed, and every error is one line with exit 2."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
import tracemalloc

import pytest

from healthcheck import Checker, Condition, Result
from healthcheck._agent.config import ConfigError, load_config
from healthcheck.sdk import http

NODE = "node-1"

ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]",
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]",
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]",
        "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]",
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
        "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]",
        "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]",
        "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]",
        "checks: [{checker: conntrack, interval: *i}]",
        "",
    ]
)


def _limit_memory():
    limit = 1 << 30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def check_config(bin_path, tmp_path, text: str):
    import subprocess

    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return subprocess.run(
        [bin_path("healthcheck"), "agent", "--config", str(path), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
    )


def one_error_line(proc) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert len(lines[0].encode()) <= 1024
    return lines[0]


# ------------------------------------------------------------------------------ YAML config


def test_nested_aliases_cost_nothing(bin_path, tmp_path):
    """405 bytes of nested aliases took over 2 GB in --check-config (here: 1 GiB address space)."""
    line = one_error_line(check_config(bin_path, tmp_path, ALIAS_BOMB))
    assert "aliases (*name) are not supported" in line


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("checks: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 16 levels"),
        ("? [a, b]\n: 1\n", "unhashable"),
        ("checks:\n  - {checker: conntrack, interval: 2001-02-30}\n", "cannot decode"),
        ("eventNamespace: " + "9" * 5000 + "\n", "cannot decode"),
        ("metrics: 127.0.0.1:²\n", "is not host:port"),
        ("server: 127.0.0.1:٣٣\n", "is not host:port"),
        ('eventNamespace: "a\\nb"\n', "must be one line"),
        ('checks:\n  - {checker: conntrack, name: "x\\ty"}\n', "must be one line"),
    ],
)
def test_hostile_yaml_is_one_line_and_exit_2(bin_path, tmp_path, text, says):
    assert says in one_error_line(check_config(bin_path, tmp_path, text))


@pytest.mark.parametrize(
    ("stanza", "says"),
    [
        ("interval: 2562047h", "longer than the maximum 8760h"),
        ("timeout: 100000h", "longer than the maximum 8760h"),
        ("interval: 1ns", "below the minimum 100ms"),
        ("interval: 99ms", "below the minimum 100ms"),
    ],
)
def test_check_durations_are_bounded_at_parse_time(bin_path, tmp_path, stanza, says):
    text = f"checks:\n  - checker: conntrack\n    {stanza}\n"
    assert says in one_error_line(check_config(bin_path, tmp_path, text))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("heartbeatPeriod: 2562047h\n", "longer than the maximum"),
        ("heartbeatPeriod: 10ms\n", "below the minimum 1s"),
        ("checks:\n  - checker: conntrack\n    options: {threshold: ٣}\n", "invalid integer"),
    ],
)
def test_every_number_in_the_config_is_bounded(bin_path, tmp_path, text, says):
    assert says in one_error_line(check_config(bin_path, tmp_path, text))


def test_the_floor_still_takes_what_worked(tmp_path):
    from healthcheck import _host as host

    path = tmp_path / "agent.yaml"
    path.write_text("heartbeatPeriod: 1s\nchecks:\n  - {checker: conntrack, interval: 100ms}\n")
    catalog = {n: lc.checker for n, lc in host.discover().checkers.items()}
    config = load_config(str(path), catalog)
    assert (config.heartbeat, config.checks[0].interval) == (1.0, 0.1)


def test_a_declared_interval_below_the_floor_needs_one_in_the_config(tmp_path):
    spinner = Checker(
        "spinner",
        description="",
        check=lambda ctx: Result.ok(),
        condition=Condition("", "R", permanent=False),
        interval=1e-9,
    )
    path = tmp_path / "agent.yaml"
    path.write_text("checks:\n  - checker: spinner\n")
    with pytest.raises(ConfigError, match="below the minimum 100ms; set an interval"):
        load_config(str(path), {"spinner": spinner})
    path.write_text("checks:\n  - {checker: spinner, interval: 1s}\n")
    assert load_config(str(path), {"spinner": spinner}).checks[0].interval == 1.0


# ------------------------------------------------------------------------ numbers elsewhere


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 1e12}, {"interval": 1e12}, {"timeout": float("nan")}, {"interval": float("inf")}],
)
def test_a_checker_cannot_declare_a_duration_no_timer_takes(kwargs):
    with pytest.raises(ValueError, match=r"checker x: (interval|timeout)"):
        Checker(
            "x",
            description="",
            check=lambda ctx: Result.ok(),
            condition=Condition("", "R", permanent=False),
            **kwargs,
        )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--timeout", "2562047h"], "longer than 8760h"),
        (["--threshold", "٣"], "invalid integer"),
        (["--threshold", "²"], "invalid integer"),
        (["--threshold", "99999999999999999999999"], "invalid integer"),
        (["--max-output-length", "٣"], "invalid integer"),
    ],
)
def test_check_flags_are_bounded_ascii_numbers(run_cli, args, says):
    proc = run_cli("check", "conntrack", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stdout.rstrip("\n")
    assert "\n" not in line and len(line.encode()) <= 80
    assert says in line + proc.stderr


def test_check_usage_errors_are_one_protocol_line_and_honour_json(run_cli):
    proc = run_cli("check", "no\nsuch\nchecker" + "x" * 500)
    assert proc.returncode == 2
    assert proc.stdout.count("\n") == 1 and len(proc.stdout.rstrip("\n").encode()) <= 80
    assert proc.stdout.startswith("healthcheck check: unknown checker")
    proc = run_cli("check", "conntrack", "--threshold", "a\nb", "--json")
    assert proc.returncode == 2
    record = json.loads(proc.stdout)
    assert record["status"] == "UNKNOWN" and record["exit_code"] == 2
    assert record["error"] == "usage" and record["checker"] == "conntrack"
    assert record["message"].startswith("healthcheck check conntrack: argument --threshold")
    assert len(record["message"].encode()) <= 80 and "\n" not in record["message"]


# ---------------------------------------------------------------------------- HTTP parsing


def serve_once(reply: bytes):
    """A real unix-socket server that answers one request with ``reply`` and hangs up."""
    import tempfile

    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "s")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)

    def run():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            with contextlib.suppress(OSError):  # the client may give up first
                conn.sendall(reply)
        listener.close()

    threading.Thread(target=run, daemon=True).start()
    return path


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 \xc2\xb2\xc2\xb2\xc2\xb2 OK\r\n\r\n",  # superscript digits
        "HTTP/1.1 ٢٠٠ OK\r\n\r\n".encode(),
        b"HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: ٣\r\n\r\nabc".encode(),
        b"HTTP/1.1 200 OK\r\nContent-Length: \xc2\xb2\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
    ],
)
def test_malformed_numbers_in_a_response_are_http_errors(reply):
    path = serve_once(reply)
    with pytest.raises(http.HttpError) as caught:
        http.request("GET", "/x", unix_socket=path, timeout=5)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("port", ["٣", "²", "+80", "0080000"])
def test_non_ascii_or_overlong_ports_in_urls_are_http_errors(port):
    with pytest.raises(http.HttpError, match="bad port"):
        http.split_url(f"http://127.0.0.1:{port}/healthz")


def test_the_reason_phrase_is_one_bounded_line():
    path = serve_once(b"HTTP/1.1 500 " + b"\x1b[31m" + b"x" * 100_000 + b"\r\n\r\n")
    response = http.request("GET", "/x", unix_socket=path, timeout=5)
    assert response.status == 500
    assert response.reason.isprintable() and len(response.reason) <= 200


def test_keep_holds_only_the_first_bytes_of_a_large_body():
    body = b"[" + b" " * (20 << 20) + b"]"
    path = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    tracemalloc.start()
    try:
        response = http.request(
            "GET", "/x", unix_socket=path, timeout=20, max_body=32 << 20, keep=4096
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.body == body[:4096]
    assert peak < 2 << 20


def test_docker_probe_does_not_hold_the_listing():
    from healthcheck._declaration import CheckContext
    from healthcheck_plugins.component import docker

    body = b"[" + b'{"Id": "x"},' * (2 << 20) + b'{"Id": "y"}]'  # 24 MiB
    path = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    options = docker.CHECKER.defaults()
    options.docker_socket = path
    ctx = CheckContext("docker", options, time.monotonic() + 30)
    tracemalloc.start()
    try:
        verdict = docker.probe(ctx)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict is None
    assert peak < 2 << 20


# ------------------------------------------------------------------------------- listeners


def _idle_clients(port: int, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        socks.append(sock)
    return socks


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def _wait_closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.mark.parametrize("listener", ["server", "metrics"])
def test_listeners_cap_connections_and_drop_idle_ones(monkeypatch, listener):
    from healthcheck._agent import server as server_module
    from healthcheck._agent.conditions import ConditionTable

    monkeypatch.setattr(server_module, "IDLE_TIMEOUT", 0.5)
    if listener == "server":
        from healthcheck._agent.clock import Clock

        srv = server_module.serve(("127.0.0.1", 0), ConditionTable([], Clock()))
        path = "/healthz"
    else:
        from healthcheck._agent.metrics import Metrics

        srv = Metrics([]).serve(("127.0.0.1", 0))
        path = "/metrics"
    port = srv.server_address[1]
    threads_before = threading.active_count()
    try:
        clients = _idle_clients(port, 100)
        time.sleep(0.3)
        # at most max_connections handler threads, however many clients wait
        assert threading.active_count() - threads_before <= server_module.MAX_CONNECTIONS
        # idle clients are dropped (after IDLE_TIMEOUT), so the listener serves again
        assert all(_wait_closed(sock, 10) for sock in clients)
        for sock in clients:
            sock.close()
        assert b" 200 " in _get(port, path).split(b"\r\n", 1)[0]
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_trickling_client_is_cut_off_at_the_request_deadline(monkeypatch):
    from healthcheck._agent import server as server_module
    from healthcheck._agent.clock import Clock
    from healthcheck._agent.conditions import ConditionTable

    monkeypatch.setattr(server_module.BoundedServer, "request_deadline", 1.0)
    srv = server_module.serve(("127.0.0.1", 0), ConditionTable([], Clock()))
    try:
        sock = socket.create_connection(("127.0.0.1", srv.server_address[1]), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.0\r\n")
        closed = False
        for _ in range(40):  # a header byte every 0.2 s: never idle, never finished
            try:
                sock.sendall(b"X")
            except OSError:
                closed = True
                break
            if _wait_closed(sock, 0.2):
                closed = True
                break
        assert closed
    finally:
        srv.shutdown()
        srv.server_close()


# ------------------------------------------------------------------------ API server JSON


def test_deeply_nested_json_from_the_api_server_is_an_api_error(tmp_path):
    """A loopback HTTP server standing in for a hostile API server."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from healthcheck._agent.kube import ApiError, KubeApi, load_client_config

    from .k8s_double import write_kubeconfig

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"[" * 200_000 + b"]" * 200_000
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", f"http://127.0.0.1:{srv.server_port}"
        )
        api = KubeApi(load_client_config(kubeconfig))
        with pytest.raises(ApiError, match="not JSON"):
            api.get_node(NODE)
    finally:
        srv.shutdown()
        srv.server_close()


def test_runner_and_scheduler_hold_a_huge_timeout_to_what_timers_take():
    """A spec built in code (not through the config, which refuses it) still runs."""
    from healthcheck._agent.config import CheckSpec
    from healthcheck._agent.scheduler import execute
    from healthcheck._runner import run_check

    checker = Checker(
        "quick",
        description="",
        check=lambda ctx: Result.ok("fine"),
        condition=Condition("", "R", permanent=False),
    )
    assert run_check(checker, checker.defaults(), timeout=1e12).result == Result.ok("fine")
    spec = CheckSpec(name="quick", checker=checker, options=checker.defaults(), timeout=1e12)
    assert execute(spec).result == Result.ok("fine")
