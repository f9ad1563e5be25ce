"""The differential tier: our drop-ins against NPD's own Go binaries (``../shared/npd/``).

Without the binaries the tier is skipped with one line saying how to enable it. On CI
(``CI=true``) with ``../shared/npd/`` present, a tier that did not run is a failure: a skip there
would hide every difference this tier exists to catch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from shared_assets import AssetsMissing, assets, shared_present

_PREFIX = "tests/npd_diff/"
_passed: list[str] = []


def _must_run() -> bool:
    return os.environ.get("CI") == "true" and shared_present("npd")


@pytest.fixture(scope="session")
def npd_bin():
    """``npd_bin(name)``: the path of NPD's binary ``name`` (health-checker, log-counter)."""
    try:
        folder = assets("npd")
    except (AssetsMissing, OSError, subprocess.CalledProcessError) as exc:
        why = f"differential tests need NPD's binaries ({exc}); set NPD_ASSETS=DIR to run them"
        if _must_run():
            pytest.fail(f"CI=true and shared/npd/ is present, but: {why}")
        pytest.skip(why)
    return lambda name: str(folder / name)


@pytest.fixture(scope="session")
def our_bin():
    """``our_bin(name)``: the installed console script ``name``."""
    return lambda name: str(Path(sys.executable).parent / name)


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and report.nodeid.startswith(_PREFIX):
        _passed.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if _must_run() and not _passed and exitstatus in (0, 5):  # 5: no test ran at all
        session.exitstatus = 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                "FAILED: CI=true and shared/npd/ is present, but no differential test "
                "(tests/npd_diff) passed"
            )
