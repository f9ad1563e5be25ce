"""A real containerd (Debian's package) with a private root, state and socket.

Shared by the component tests (tests/component/conftest.py) and bench/agent.py, so that the
cri check is measured and tested against the runtime it talks to in production.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
"""


def why_not_available() -> str | None:
    """None when containerd can run here, else why not (it needs root and the package)."""
    if os.geteuid() != 0:
        return "containerd needs root"
    if shutil.which("containerd") is None:
        return "containerd is not installed (Debian package containerd)"
    return None


def wait_for_socket(path: str, proc: subprocess.Popen, seconds: float) -> bool:
    """True once ``path`` exists; False if ``proc`` exits or ``seconds`` pass first."""
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        if proc.poll() is not None:
            return False
        if os.path.exists(path):
            return True
        time.sleep(0.1)
    return False


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def start(
    directory: Path, *, cri_config: str = "", preexec_fn=None
) -> tuple[subprocess.Popen, str]:
    """Start containerd under ``directory``; returns the process and its CRI socket path.

    ``cri_config`` is TOML appended to the CRI plugin's table (keys, then its sub-tables), for
    a containerd that runs pods. Raises ``RuntimeError`` with the end of containerd's log when it
    does not come up.
    """
    config = directory / "config.toml"
    config.write_text(CONFIG.format(d=directory) + cri_config)
    with open(directory / "log", "wb") as log:
        proc = subprocess.Popen(
            ["containerd", "--config", str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
    socket_path = str(directory / "containerd.sock")
    if not wait_for_socket(socket_path, proc, 20):
        stop(proc)
        raise RuntimeError(f"containerd did not start: {(directory / 'log').read_text()[-300:]}")
    time.sleep(0.5)  # the CRI plugin registers just after the socket appears
    return proc, socket_path


def serve_for_tests(directory: Path):
    """A pytest fixture's body: yields a running containerd's CRI socket under ``directory``
    and stops it afterwards; skips the test where containerd cannot run here."""
    import pytest

    why = why_not_available()
    if why:
        pytest.skip(why)
    try:
        proc, socket_path = start(directory)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        yield socket_path
    finally:
        stop(proc)
