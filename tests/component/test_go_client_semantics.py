"""The health probes behave as NPD's Go ``http.Client``: redirects followed (as Go counts them),
the body of the final 200 never read, ``--health-check-timeout=0`` meaning no timeout of the
probe's own. Real loopback servers whose replies are written byte by byte."""

from __future__ import annotations

import pytest
from npd_diff.harness import RawHttpServer, redirect, reply

from healthcheck.sdk import http

UNHEALTHY = "kube-proxy:kube-proxy was found unhealthy; repair flag : false\n"


@pytest.fixture
def server():
    routes = {
        "/ok": reply("200 OK"),
        "/broken": b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\npartial",
        "/none": reply("302 Found", b""),
        "/https": redirect("302 Found", "https://127.0.0.1:{port}/ok"),
        "/bad": redirect("302 Found", "http://[::1/ok"),
        "/rel": redirect("307 Temporary Redirect", "ok"),
        "/slow": reply("200 OK"),
        **{f"/c{n}": redirect("301 Moved Permanently", f"/c{n - 1}") for n in range(1, 12)},
        "/c0": reply("200 OK"),
        "/lf": b"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        "/0200": b"HTTP/1.1 0200 OK\r\nContent-Length: 0\r\n\r\n",
        "/http2": b"HTTP/2 200 OK\r\n\r\n",
        "/nocolon": b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "/1xx": b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
    }
    s = RawHttpServer(routes, delay={"/slow": 1.2})
    yield s
    s.close()


def _url(server, path):
    return f"http://127.0.0.1:{server.port}{path}"


def test_redirects_are_followed_as_go_counts_them(server):
    assert http.probe_status(_url(server, "/c9"), timeout=10) == (200, "OK")
    with pytest.raises(http.HttpError, match="stopped after 10 redirects"):
        http.probe_status(_url(server, "/c10"), timeout=10)
    assert server.paths.count("/c0") == 1  # the 9-redirect chain got there; the other did not
    assert http.probe_status(_url(server, "/rel"), timeout=10) == (200, "OK")


def test_a_redirect_without_location_is_the_answer(server):
    assert http.probe_status(_url(server, "/none"), timeout=10) == (302, "Found")


@pytest.mark.parametrize("path", ["/https", "/bad"])
def test_redirects_we_cannot_follow_are_errors(server, path):
    with pytest.raises(http.HttpError):
        http.probe_status(_url(server, path), timeout=10)


def test_heads_are_read_as_go_reads_them(server):
    assert http.probe_status(_url(server, "/lf"), timeout=10) == (200, "OK")
    assert http.probe_status(_url(server, "/1xx"), timeout=10) == (200, "OK")
    for path in ("/0200", "/http2", "/nocolon"):
        with pytest.raises(http.HttpError, match="malformed"):
            http.probe_status(_url(server, path), timeout=10)


def test_the_body_of_the_200_is_never_read(server):
    assert http.probe_status(_url(server, "/broken"), timeout=10) == (200, "OK")


def _kube_proxy(run_cli, server, path, *args):
    env = {"HOST_ADDRESS": "127.0.0.1", "KUBEPROXY_PORT": f"{server.port}{path}?"}
    return run_cli(
        "--component=kube-proxy", "--enable-repair=false", *args, script="health-checker", env=env
    )


def test_broken_body_and_redirect_to_200_are_healthy(run_cli, server):
    assert _kube_proxy(run_cli, server, "/broken").returncode == 0
    assert _kube_proxy(run_cli, server, "/c3").returncode == 0
    proc = _kube_proxy(run_cli, server, "/c10")
    assert (proc.returncode, proc.stdout) == (1, UNHEALTHY)
    assert "stopped after 10 redirects" in proc.stderr


def test_timeout_zero_means_no_timeout_of_the_probe(run_cli, server):
    assert _kube_proxy(run_cli, server, "/slow", "--health-check-timeout=1s").returncode == 1
    assert _kube_proxy(run_cli, server, "/slow", "--health-check-timeout=0").returncode == 0
    assert _kube_proxy(run_cli, server, "/slow", "--health-check-timeout=-1s").returncode == 0


def test_timeout_zero_fails_docker_and_cri_at_once_as_npd(run_cli, unix_http_server):
    """NPD runs `docker ps` / crictl under a context whose deadline has already passed."""
    api = unix_http_server(body=b"[]")
    args = ("--component=docker", f"--docker-socket={api.socket_path}", "--enable-repair=false")
    assert run_cli(*args, script="health-checker").returncode == 0
    proc = run_cli(*args, "--health-check-timeout=0", script="health-checker")
    assert (proc.returncode, proc.stdout) == (
        1,
        "docker:docker was found unhealthy; repair flag : false\n",
    )
    assert api.paths == ["/containers/json"]  # the second run never asked
