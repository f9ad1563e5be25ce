"""The drop-ins when the reader of stdout is gone (EPIPE): the exit code still tells the result and
nothing but at most one log line reaches stderr, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ENV = {"PATH": "/usr/bin:/bin", "KUBELET_PORT": "1"}


def _run_with_stdout_closed(argv: list[str]) -> subprocess.CompletedProcess:
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout now fails with EPIPE
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, timeout=60, env=ENV, text=True
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "argv, code",
    [
        (["health-checker", "--component=kubelet", "--bogus"], 2),
        (["log-counter", "--bogus"], 2),
        (["health-checker", "--component=kubelet", "--enable-repair=false"], 1),
    ],
)
def test_a_closed_stdout_is_no_traceback(argv, code):
    """Before: BrokenPipeError escaped (the usage error's handler printed, or the interpreter's
    final flush did): a traceback on stderr and exit 1 or 120 instead of the result's code."""
    proc = _run_with_stdout_closed([str(BIN / argv[0]), *argv[1:]])
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.returncode == code
