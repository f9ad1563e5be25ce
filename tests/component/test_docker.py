"""docker: the Engine API over a unix socket, from a real unix-socket server and a real dockerd."""

from __future__ import annotations

import time

import pytest


def _docker(run_cli, socket_path, *args):
    return run_cli(
        "--component=docker",
        f"--docker-socket={socket_path}",
        "--enable-repair=false",
        *args,
        script="health-checker",
        timeout=60,
    )


def test_engine_api_listing_containers_is_healthy(run_cli, unix_http_server):
    server = unix_http_server(status=200, body=b'[{"Id":"abc","Names":["/x"]}]')
    proc = _docker(run_cli, server.socket_path)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert server.paths == ["/containers/json"]


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (500, b'{"message":"error"}', "HTTP 500"),
        (200, b'{"message":"not a list"}', "did not return a list"),
    ],
)
def test_engine_api_errors_are_unhealthy(run_cli, unix_http_server, status, body, why):
    server = unix_http_server(status=status, body=body)
    proc = _docker(run_cli, server.socket_path)
    assert proc.returncode == 1
    assert proc.stdout == "docker:docker was found unhealthy; repair flag : false\n"
    assert why in proc.stderr


def test_hanging_engine_api_is_unhealthy_within_the_timeout(run_cli, unix_http_server):
    server = unix_http_server(mode="hang")
    start = time.monotonic()
    proc = _docker(run_cli, server.socket_path, "--health-check-timeout=500ms")
    assert proc.returncode == 1
    assert "timed out" in proc.stderr
    assert time.monotonic() - start < 10


def test_missing_socket_is_unhealthy(run_cli, tmp_path):
    proc = _docker(run_cli, tmp_path / "docker.sock")
    assert proc.returncode == 1
    assert "No such file or directory" in proc.stderr


@pytest.mark.root
@pytest.mark.slow
def test_real_dockerd(run_cli, dockerd):
    proc = _docker(run_cli, dockerd)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    proc = run_cli(
        "check", "docker", f"--docker-socket={dockerd}", "--enable-repair=false", timeout=60
    )
    assert proc.returncode == 0
