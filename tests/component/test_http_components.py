"""kubelet and kube-proxy against real HTTP servers on loopback (spec 3.2, 3.6 and 8.1)."""

from __future__ import annotations

import socket
import time

import pytest


def _env(server, port_var="KUBELET_PORT", host="127.0.0.1"):
    return {"HOST_ADDRESS": host, port_var: str(server.server_address[1])}


def _hc(run_cli, systemctl, *args, env):
    return run_cli(
        *args, f"--systemctl={systemctl.path}", script="health-checker", env=env, timeout=30
    )


def test_kubelet_healthy_is_silent_exit_0_and_never_repairs(run_cli, http_server, systemctl):
    server = http_server(status=200)
    proc = _hc(run_cli, systemctl, "--component=kubelet", "--enable-repair=true", env=_env(server))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert server.paths == ["/healthz"]
    assert systemctl.calls() == []  # healthy: not even an uptime lookup (NPD skips it)


@pytest.mark.parametrize("status", [500, 404, 201])
def test_kubelet_any_status_but_200_is_unhealthy(run_cli, http_server, systemctl, status):
    server = http_server(status=status, body=b"[-]ping failed")
    proc = _hc(run_cli, systemctl, "--component=kubelet", "--enable-repair=false", env=_env(server))
    assert proc.returncode == 1
    assert proc.stdout == "kubelet:kubelet was found unhealthy; repair flag : false\n"
    assert f"HTTP {status}" in proc.stderr
    assert systemctl.calls() == []


def test_kubelet_hanging_past_the_timeout_is_unhealthy_not_an_error(
    run_cli, http_server, systemctl
):
    server = http_server(mode="hang")
    start = time.monotonic()
    proc = _hc(
        run_cli,
        systemctl,
        "--enable-repair=false",
        "--health-check-timeout=500ms",
        env=_env(server),
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "timed out" in proc.stderr
    assert elapsed < 10  # bounded by the 500ms timeout, not by the server's 30s hang


def test_kubelet_connection_closed_without_response_is_unhealthy(run_cli, http_server, systemctl):
    server = http_server(mode="close")
    proc = _hc(run_cli, systemctl, "--enable-repair=false", env=_env(server))
    assert proc.returncode == 1
    assert "closed" in proc.stderr or "failed" in proc.stderr


def test_kubelet_connection_refused_is_unhealthy(run_cli, systemctl):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        env = {"HOST_ADDRESS": "127.0.0.1", "KUBELET_PORT": str(port)}
        proc = _hc(run_cli, systemctl, "--enable-repair=false", env=env)
    assert proc.returncode == 1
    assert "refused" in proc.stderr


def test_kubelet_ipv6_loopback_is_bracketed(run_cli, http_server, systemctl):
    server = http_server(status=200, family=socket.AF_INET6)
    proc = _hc(run_cli, systemctl, "--component=kubelet", env=_env(server, host="::1"))
    assert (proc.returncode, proc.stdout) == (0, "")
    assert server.paths == ["/healthz"]


def test_endpoint_from_environment_as_npd(run_cli, systemctl):
    """NPD's TestKubeEndpointConfiguration, read from the URL the probe reports."""
    cases = [
        ({}, "http://localhost:10248/healthz", "kubelet"),
        ({}, "http://localhost:10256/livez", "kube-proxy"),
        ({"HOST_ADDRESS": "80:f4:16::1"}, "http://[80:f4:16::1]:10248/healthz", "kubelet"),
        (
            {"HOST_ADDRESS": "127.0.0.9", "KUBELET_PORT": "1"},
            "http://127.0.0.9:1/healthz",
            "kubelet",
        ),
        ({"KUBEPROXY_PORT": "2"}, "http://localhost:2/livez", "kube-proxy"),
        (
            {"HOST_ADDRESS": "127.0.0.9", "KUBELET_PORT": "3", "KUBEPROXY_PORT": "4"},
            "http://127.0.0.9:4/livez",
            "kube-proxy",
        ),
    ]
    for env, url, component in cases:
        full = {"HOST_ADDRESS": "", "KUBELET_PORT": "", "KUBEPROXY_PORT": "", **env}
        proc = _hc(
            run_cli,
            systemctl,
            f"--component={component}",
            "--enable-repair=false",
            "--health-check-timeout=300ms",
            env=full,
        )
        assert f"GET {url}:" in proc.stderr, (env, proc.stderr)


def test_malformed_port_in_environment_is_an_error(run_cli, systemctl):
    """A URL Go cannot parse is NPD's error, in Go's words (differential run)."""
    proc = _hc(run_cli, systemctl, env={"KUBELET_PORT": "http"})
    assert proc.returncode == 2
    assert proc.stdout == (
        'error checking kubelet health: parse "http://localhost:http/healthz": '
        'invalid port ":http" after host\n'
    )


def test_port_out_of_range_is_unhealthy_as_npd(run_cli, systemctl):
    """Go parses ``localhost:99999`` and then fails to dial it: unhealthy, not an error."""
    proc = _hc(run_cli, systemctl, "--enable-repair=false", env={"KUBELET_PORT": "99999"})
    assert (proc.returncode, proc.stdout) == (
        1,
        "kubelet:kubelet was found unhealthy; repair flag : false\n",
    )


def test_kube_proxy_asks_livez_by_default_and_healthz_on_request(run_cli, http_server, systemctl):
    server = http_server(status=200)
    env = _env(server, "KUBEPROXY_PORT")
    assert _hc(run_cli, systemctl, "--component=kube-proxy", env=env).returncode == 0
    proc = _hc(run_cli, systemctl, "--component=kube-proxy", "--kube-proxy-path=/healthz", env=env)
    assert proc.returncode == 0
    assert server.paths == ["/livez", "/healthz"]


def test_kube_proxy_unhealthy_line(run_cli, http_server, systemctl):
    server = http_server(status=503)
    systemctl.up_for(1)
    proc = _hc(run_cli, systemctl, "--component=kube-proxy", env=_env(server, "KUBEPROXY_PORT"))
    assert proc.stdout == "kube-proxy:kube-proxy was found unhealthy; repair flag : true\n"
    assert proc.returncode == 1


def test_healthcheck_check_takes_the_same_options(run_cli, http_server, systemctl):
    server = http_server(status=500)
    proc = run_cli(
        "check",
        "kubelet",
        "--service=kubelet-custom",
        "--enable-repair=false",
        f"--systemctl={systemctl.path}",
        env=_env(server),
    )
    assert proc.returncode == 1
    assert proc.stdout == "kubelet:kubelet-custom was found unhealthy; repair flag : false\n"
    ok = http_server(status=200)
    assert run_cli("check", "kubelet", env=_env(ok)).returncode == 0
