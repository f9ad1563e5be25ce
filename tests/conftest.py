"""Shared fixtures. Tests run against the installed package (``./run tests`` reinstalls it), so
that what is tested is what a user gets; a stale install stops the run at once."""

from __future__ import annotations

import filecmp
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _installed_matches_source() -> list[str]:
    import healthcheck
    import healthcheck_plugins

    stale = []
    for package, source in (
        (healthcheck, REPO / "healthcheck"),
        (healthcheck_plugins, REPO / "plugins"),
    ):
        installed = Path(package.__file__).parent
        if installed.resolve() == source.resolve():
            continue
        for src in source.rglob("*.py"):
            dst = installed / src.relative_to(source)
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                stale.append(str(src.relative_to(REPO)))
    return stale


def pytest_configure(config):
    stale = _installed_matches_source()
    if stale:
        pytest.exit(f"installed package is older than {stale[0]}: run ./run tests", returncode=2)


@pytest.fixture
def bin_path():
    """Path of an installed console script (healthcheck, health-checker, log-counter)."""

    def find(name: str) -> str:
        path = BIN / name
        assert path.exists(), f"{name} is not installed in {BIN}"
        return str(path)

    return find


@pytest.fixture
def run_cli(bin_path):
    """Run a console script as a user would: a real process, no terminal, captured output."""
    import subprocess

    def run(
        *args: str,
        script: str = "healthcheck",
        env=None,
        timeout: float = 60,
        min_uptime: float = 0.0,
    ):
        """``min_uptime``: the command must see the machine up at least that long (a window
        that reaches back further than the boot is cut at the boot, NPD's rule); on a machine
        booted more recently it runs in a time namespace whose boot clock is set forward."""
        full_env = dict(os.environ)
        full_env.pop("NO_COLOR", None)
        if env:
            full_env.update(env)
        prefix = []
        if min_uptime:
            from healthcheck_plugins.log_counter.window import uptime

            up = uptime()
            if up < min_uptime:
                prefix = ["unshare", "--time", f"--boottime={int(min_uptime - up) + 60}", "--"]
        return subprocess.run(
            [*prefix, bin_path(script), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    return run


def needs_root():
    return pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def make_journal(tmp_path):
    """Write real journal files: ``make_journal(records, name="x.journal") -> directory``.

    ``records`` are :class:`journalfile.Record` objects in time order; the file is written by
    systemd-journal-remote into a fresh directory under ``tmp_path``.
    """
    from journalfile import write_journal

    counter = iter(range(1_000_000))

    def make(records, *, name: str = "system.journal", directory=None, boot_time: float = 0.0):
        target = directory or tmp_path / f"journal-{next(counter)}"
        write_journal(target, records, name=name, boot_time=boot_time)
        return str(target)

    return make


@pytest.fixture
def double():
    """The Kubernetes API server double (tests/k8s_double.py) with one node, ``node-1``: for
    faults the real apiserver cannot produce on demand (use ``kube`` for everything else)."""
    from k8s_double import ApiServerDouble

    server = ApiServerDouble()
    server.add_node("node-1")
    yield server
    server.close()


@pytest.fixture(scope="session")
def envtest(tmp_path_factory):
    """A real kube-apiserver + etcd for the whole session (tests/envtest.py's :class:`Envtest`).

    Skipped with one line where the binaries are absent; a failure instead under ``CI=true``
    when ``../shared/envtest`` is there, since a skip would then hide a gap.
    """
    from envtest import EnvtestError, find_binaries, start_envtest
    from shared_assets import shared_present

    try:
        folder = find_binaries()
    except EnvtestError as exc:
        message = f"real kube-apiserver tier: {exc}"
        if os.environ.get("CI") == "true" and shared_present("envtest"):
            pytest.fail(f"{message} (CI=true and ../shared/envtest exists: it must not skip)")
        pytest.skip(message)
    # A server that is there but fails to start is a failure, never a skip.
    with start_envtest(tmp_path_factory.mktemp("envtest"), assets=folder) as env:
        yield env


RBAC_YAML = REPO / "packaging" / "kubernetes" / "rbac.yaml"


@pytest.fixture(scope="session")
def shipped_rbac(envtest):
    """The session's real apiserver with packaging/kubernetes/rbac.yaml applied, as shipped."""
    envtest.kubectl("apply", "-f", str(RBAC_YAML))
    return envtest


@pytest.fixture(params=["double", "real"])
def kube(request):
    """The API server an agent test runs against (tests/kube_backends.py): the double, then the
    real kube-apiserver with the shipped RBAC, the agent as its ServiceAccount."""
    from kube_backends import DoubleBackend, RealBackend

    if request.param == "double":
        yield DoubleBackend(request.getfixturevalue("double"))
        return
    backend = RealBackend(request.getfixturevalue("shipped_rbac"))
    try:
        yield backend
    finally:
        backend.close()
