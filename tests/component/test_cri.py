"""cri: the RuntimeService over gRPC against a real containerd, a stopped socket, a socket that
never answers and a runtime that answers badly (tests/grpc_server.py); the hand-written protobuf
codec; crictl only when asked and present."""

from __future__ import annotations

import socket
import time

import pytest

from healthcheck_plugins.component import criapi as cri


def _cri(run_cli, endpoint, *args):
    return run_cli(
        "--component=cri",
        f"--cri-socket-path={endpoint}",
        "--enable-repair=false",
        *args,
        script="health-checker",
        timeout=60,
    )


@pytest.mark.root
def test_real_containerd_is_healthy_and_reports_network_not_ready(run_cli, containerd):
    proc = _cri(run_cli, f"unix://{containerd}")
    assert (proc.returncode, proc.stdout) == (0, "")
    # No CNI on this machine: a real NetworkReady=false, logged but not a runtime problem.
    assert "NetworkReady is false (NetworkPluginNotReady" in proc.stderr


@pytest.mark.root
def test_real_containerd_network_not_ready_is_unhealthy_when_required(run_cli, containerd):
    proc = _cri(run_cli, f"unix://{containerd}", "--require-network-ready=true")
    assert proc.returncode == 1
    assert proc.stdout == "cri:containerd was found unhealthy; repair flag : false\n"


@pytest.mark.root
def test_client_reads_version_status_and_sandboxes(containerd):
    with cri.RuntimeClient(containerd) as client:
        version = client.version(5)
        conditions = {c.type: c.status for c in client.status(5)}
        sandboxes = client.list_pod_sandboxes(5)
    assert version["runtime_name"] == "containerd"
    assert version["runtime_api_version"] == "v1"
    assert conditions == {"RuntimeReady": True, "NetworkReady": False}
    assert sandboxes == []


def test_stopped_socket_is_unhealthy(run_cli, tmp_path):
    path = str(tmp_path / "stopped.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.close()  # the file stays, nobody listens: what a crashed runtime leaves behind
    proc = _cri(run_cli, f"unix://{path}")
    assert proc.returncode == 1
    assert "UNAVAILABLE" in proc.stderr


def test_socket_that_never_answers_is_unhealthy_within_the_timeout(run_cli, tmp_path):
    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(16)  # connections queue up, nothing ever speaks HTTP/2
        start = time.monotonic()
        proc = _cri(run_cli, f"unix://{path}", "--cri-timeout=500ms")
        elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert "DEADLINE_EXCEEDED" in proc.stderr
    assert elapsed < 15


def test_unsupported_endpoint_is_a_flag_error(run_cli):
    proc = _cri(run_cli, "tcp://127.0.0.1:1234")
    assert proc.returncode == 2
    assert "unsupported CRI endpoint" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_empty_crictl_path_is_invalid_as_npd(run_cli):
    proc = _cri(run_cli, "unix:///run/x.sock", "--crictl-path=")
    assert proc.returncode == 2
    assert proc.stdout.strip() == "the crictl-path cannot be empty for cri component"  # NPD's


def test_crictl_used_only_when_asked_and_present(run_cli, tmp_path):
    record = tmp_path / "argv"
    crictl = tmp_path / "crictl"
    crictl.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nexit 1\n')
    crictl.chmod(0o755)
    endpoint = f"unix://{tmp_path}/none.sock"
    _cri(run_cli, endpoint, f"--crictl-path={crictl}")
    assert not record.exists()  # not asked: the CRI is called directly
    proc = _cri(run_cli, endpoint, f"--crictl-path={crictl}", "--use-crictl", "--cri-timeout=10s")
    assert proc.returncode == 1
    assert record.read_text().splitlines() == [
        "--timeout=10s",
        f"--runtime-endpoint={endpoint}",
        "pods",
        "--latest",
    ]
    proc = _cri(run_cli, endpoint, f"--crictl-path={tmp_path}/absent", "--use-crictl")
    assert "is not executable; asking the CRI directly" in proc.stderr


def test_codec_round_trips_and_rejects_truncation():
    condition = cri.encode_field(1, "RuntimeReady") + cri.encode_field(2, True)
    network = (
        cri.encode_field(1, "NetworkReady")
        + cri.encode_field(2, False)
        + cri.encode_field(3, "NoCNI")
        + cri.encode_field(4, "x" * 300)
    )
    status = cri.encode_field(1, cri.encode_field(1, condition) + cri.encode_field(1, network))
    decoded = cri.decode_status(status + cri.encode_field(2, b"info"))
    assert [(c.type, c.status, c.reason) for c in decoded] == [
        ("RuntimeReady", True, ""),
        ("NetworkReady", False, "NoCNI"),
    ]
    assert decoded[1].message == "x" * 300
    sandbox = cri.encode_field(1, "abc") + cri.encode_field(3, 1) + cri.encode_field(4, 2**60)
    assert cri.decode_sandboxes(cri.encode_field(1, sandbox)) == [
        {"id": "abc", "state": 1, "created_at": 2**60}
    ]
    with pytest.raises(ValueError):
        cri.decode_status(status[:-3])
    with pytest.raises(ValueError):
        cri.decode_fields(b"\x80" * 11)


def test_runtime_not_ready_is_unhealthy_with_its_reason(run_cli, tmp_path):
    from grpc_server import GrpcServer, Reply

    condition = (
        cri.encode_field(1, "RuntimeReady")
        + cri.encode_field(2, False)
        + cri.encode_field(3, "ContainerdNotReady")
        + cri.encode_field(4, "snapshotter stuck")
    )
    status = cri.encode_field(1, cri.encode_field(1, condition))
    with GrpcServer(str(tmp_path / "cri.sock"), Reply(message=status)) as server:
        proc = _cri(run_cli, f"unix://{server.path}")
    assert proc.returncode == 1
    assert proc.stdout == "cri:containerd was found unhealthy; repair flag : false\n"
    assert "RuntimeReady is not true (ContainerdNotReady: snapshotter stuck)" in proc.stderr
    paths = [headers[":path"] for headers, _ in server.requests]
    assert paths == [
        "/runtime.v1.RuntimeService/ListPodSandbox",
        "/runtime.v1.RuntimeService/Status",
    ]


def test_a_reply_that_is_not_protobuf_is_unhealthy_not_a_crash(run_cli, tmp_path):
    from grpc_server import GrpcServer, Reply

    with GrpcServer(str(tmp_path / "cri.sock"), Reply(message=b"\x0a\xff")) as server:
        proc = _cri(run_cli, f"unix://{server.path}")
    assert proc.returncode == 1
    assert "malformed reply" in proc.stderr
    assert "Traceback" not in proc.stderr
