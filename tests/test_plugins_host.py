"""Plugin discovery through real installed metadata: built-ins, a pip-installed third-party
distribution, and plugins that are broken in every way we know of."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from plugin_install import pip_install_example

from healthcheck import _host as host
from healthcheck._epindex import normalize, read_index

REPO = Path(__file__).resolve().parent.parent


def _fake_dist(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]):
    """Install a distribution by hand: a dist-info with entry points, and its modules."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = ["[healthcheck]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))


BROKEN_PLUGINS = {
    "broken_import": (
        {"broken": "broken_import_mod"},
        {"broken_import_mod": "raise ImportError('libfoo.so.1: cannot open shared object')\n"},
    ),
    "impostor": (
        {"impostor": "impostor_mod"},
        {
            "impostor_mod": """
            from healthcheck import Checker, Condition, Result, hookimpl
            @hookimpl
            def healthcheck_checkers():
                return [Checker("conntrack", description="fake", check=lambda ctx: Result.ok(),
                                condition=Condition("", "X", permanent=False))]
        """
        },
    ),
    "raiser": (
        {"raiser": "raiser_mod"},
        {
            "raiser_mod": """
            from healthcheck import hookimpl
            @hookimpl
            def healthcheck_checkers():
                raise RuntimeError("boom")
        """
        },
    ),
    "badsig": (
        {"badsig": "badsig_mod"},
        {
            "badsig_mod": """
            from healthcheck import hookimpl
            @hookimpl
            def healthcheck_checkers(unexpected_argument):
                return []
        """
        },
    ),
    "notalist": (
        {"notalist": "notalist_mod"},
        {
            "notalist_mod": """
            from healthcheck import hookimpl
            @hookimpl
            def healthcheck_checkers():
                return "conntrack"
        """
        },
    ),
}


@pytest.fixture
def broken_site(tmp_path):
    site = tmp_path / "site"
    for dist, (eps, modules) in BROKEN_PLUGINS.items():
        _fake_dist(site, dist, eps, modules)
    return site


def test_entry_point_index_parses_real_metadata_format(tmp_path):
    _fake_dist(tmp_path, "Some_Dist.Name", {"a": "pkg.mod:attr [extra]", "b": "other"}, {})
    info = tmp_path / "Some_Dist.Name-1.0.dist-info" / "entry_points.txt"
    info.write_text("# comment\n[console_scripts]\nx = y:z\n" + info.read_text() + "[other]\nq=r\n")
    eps = read_index([str(tmp_path)])
    assert [(e.name, e.module, e.attr, e.distribution) for e in eps] == [
        ("a", "pkg.mod", "attr", "some-dist-name"),
        ("b", "other", None, "some-dist-name"),
    ]
    assert normalize("Foo__Bar..baz") == "foo-bar-baz"


def test_builtin_conntrack_is_found_by_both_paths():
    fast = host.find("conntrack")
    full = host.discover().checkers["conntrack"]
    assert fast.checker is full.checker or fast.checker.name == full.checker.name
    assert fast.distribution == full.distribution == "node-healthcheck"


def test_broken_plugins_are_listed_and_never_break_the_others(run_cli, broken_site):
    env = {"PYTHONPATH": str(broken_site)}
    listing = run_cli("list", "--json", env=env)
    assert listing.returncode == 0, listing.stderr
    rows = {(r["name"], r["distribution"]): r for r in json.loads(listing.stdout)}
    assert rows[("conntrack", "node-healthcheck")]["status"] == "ok"
    errors = {dist: r["error"] for (_, dist), r in rows.items() if r["status"] == "broken"}
    assert errors["broken-import"] == (
        "import failed: ImportError: libfoo.so.1: cannot open shared object"
    )
    assert errors["impostor"] == (
        "checker name 'conntrack' is already provided by node-healthcheck (conntrack)"
    )
    assert errors["raiser"] == "RuntimeError: boom"
    assert errors["badsig"].startswith("invalid plugin: PluginValidationError:")
    assert "must return a list of healthcheck.Checker" in errors["notalist"]
    assert run_cli("list", env=env).returncode == 0

    check = run_cli("check", "conntrack", env=env)
    assert check.returncode in (0, 1), check.stdout
    assert check.stdout.startswith("Conntrack table usage")

    broken = run_cli("check", "broken", env=env)
    assert broken.returncode == 2
    # A usage error on check's stdout is a protocol line: cut at 80 bytes (issue 11).
    expected = (
        "healthcheck check: checker 'broken' is broken (broken-import): import failed: "
        "ImportError: libfoo.so.1: cannot open shared object"
    )
    assert broken.stdout.strip() == expected[:80].rstrip()


def test_unknown_checker_is_one_line_exit_2(run_cli):
    proc = run_cli("check", "no-such-check")
    assert proc.returncode == 2
    assert proc.stdout.startswith("healthcheck check: unknown checker 'no-such-check'")
    # the protocol line is cut at 80 bytes; the whole line, with the list, is on stderr
    assert "conntrack" in proc.stderr
    assert proc.stdout.count("\n") == 1 and proc.stderr.count("\n") == 1


def test_pip_installed_third_party_plugin_runs(tmp_path, run_cli):
    site = pip_install_example("healthcheck-example", tmp_path)
    env = {"PYTHONPATH": site}
    rows = json.loads(run_cli("list", "--json", env=env).stdout)
    assert {
        "name": "file-age",
        "distribution": "healthcheck-example",
        "plugin": "file-age",
        "description": "is a heartbeat file fresh?",
        "status": "ok",
        "error": None,
    } in rows

    beat = tmp_path / "heartbeat"
    missing = run_cli("check", "file-age", "--path", str(beat), "--max-output-length=500", env=env)
    assert (missing.returncode, missing.stdout) == (1, f"{beat} does not exist\n")
    beat.write_text("")
    fresh = run_cli(
        "check",
        "file-age",
        f"--path={beat}",
        "--max-age",
        "1m",
        "--max-output-length",
        "500",
        env=env,
    )
    assert (fresh.returncode, fresh.stdout) == (0, f"{beat} is fresh\n")
    bad = run_cli("check", "file-age", "--max-age", "soon", env=env)
    assert bad.returncode == 2
    assert bad.stdout.startswith("healthcheck check file-age: argument --max-age: invalid dur")

    out = tmp_path / "npd"
    assert run_cli("npd-config", "file-age", "--output-dir", str(out), env=env).returncode == 0
    doc = json.loads((out / "healthcheck-file-age.json").read_text())
    assert doc["conditions"] == [
        {
            "type": "StaleHeartbeat",
            "reason": "HeartbeatIsFresh",
            "message": "the heartbeat file is fresh",
        }
    ]
    assert doc["rules"][0]["args"] == ["check", "file-age"]
