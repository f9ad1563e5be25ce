"""Installing the example plugins as a user installs a plugin, for the tests that run them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pip_install_example(name: str, workdir: Path) -> str:
    """Install ``examples/NAME`` as a user installs a plugin (pip, no dependencies) into
    ``workdir/site`` and return that directory, for PYTHONPATH. pip builds from a copy, so the
    build leaves nothing in the repository."""
    source = workdir / "source"
    shutil.copytree(
        REPO / "examples" / name, source, ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    site = workdir / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(site), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )  # fmt: skip
    return str(site)
