"""The differential tier's rule: skipped with one line where NPD's binaries are absent, a failure
on CI when ``shared/npd/`` is there but the tier did not run (tests/npd_diff/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run_tier(tmp_path, *, select="flags_parse", paths=("tests/npd_diff",), **env):
    shared = tmp_path / "shared"
    (shared / "npd").mkdir(parents=True)
    (shared / "npd" / "SHA256SUMS").write_text("")
    full = {k: v for k, v in os.environ.items() if k != "CI"}
    full.update({"NODE_HEALTHCHECK_SHARED": str(shared), **env})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *paths,
            "-k",
            select,
        ],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_absent_binaries_skip_with_a_hint(tmp_path):
    proc = _run_tier(tmp_path, NPD_ASSETS=str(tmp_path / "nowhere"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped" in proc.stdout
    assert "set NPD_ASSETS=DIR" in proc.stdout


def test_on_ci_a_tier_that_cannot_run_fails(tmp_path):
    proc = _run_tier(tmp_path, CI="true", NPD_ASSETS=str(tmp_path / "nowhere"))
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "CI=true and shared/npd/ is present" in proc.stdout


def test_on_ci_a_tier_left_out_of_the_run_fails(tmp_path):
    """Everything selected passes, but no differential test ran: still a failure on CI."""
    proc = _run_tier(
        tmp_path,
        select="test_go_durations_parse",
        paths=("tests/npd_diff", "tests/test_duration.py"),
        CI="true",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "passed" in proc.stdout
    assert "no differential test (tests/npd_diff) passed" in proc.stdout
