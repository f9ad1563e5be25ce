"""The healthcheck front doors: status, list, npd-config, and what the one-shot path imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from healthcheck._npdconfig import validate_document

HEAVY = {
    "pluggy",
    "importlib.metadata",
    "email",
    "http.client",
    "urllib.request",
    "kubernetes",
    "prometheus_client",
    "yaml",
    "grpc",
    "h2",
    "re2",
    "systemd",
    "pyroute2",
    "psutil",
    "dataclasses",
    "typing",
    "inspect",
    "subprocess",
    "json",
    "concurrent.futures",
}


def imported_modules(script: str, *args: str) -> set[str]:
    """Every module a console script has imported by the time it exits.

    ``-X importtime`` misses modules loaded through importlib.import_module (entry points are),
    so the script is executed as ``__main__`` (as its shebang would) and dumps ``sys.modules``
    at exit. The wrapper itself imports nothing beyond what the interpreter has at start-up.
    """
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('\\n'.join(['MODULES', *sys.modules])))\n"
        "sys.argv = sys.argv[1:]\n"
        "with open(sys.argv[0]) as fh:\n"
        "    source = fh.read()\n"
        "exec(compile(source, sys.argv[0], 'exec'), {'__name__': '__main__'})\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, script, *args], capture_output=True, text=True, timeout=60
    )
    assert "MODULES" in proc.stderr, proc.stderr
    return set(proc.stderr.split("MODULES", 1)[1].split())


def test_one_shot_conntrack_imports_nothing_heavy(bin_path):
    names = imported_modules(bin_path("healthcheck"), "check", "conntrack")
    assert "healthcheck_plugins.conntrack" in names
    assert not names & HEAVY, sorted(names & HEAVY)
    others = {n for n in names if n.startswith("healthcheck_plugins.")} - {
        "healthcheck_plugins.conntrack"
    }
    assert not others, "the one-shot path imported other checkers"


def test_status_runs_applicable_checkers_and_exits_with_the_worst(run_cli):
    proc = run_cli("status")
    assert proc.returncode in (0, 1, 2)
    header, *rows = proc.stdout.splitlines()
    assert header.split() == ["CHECK", "STATUS", "TIME", "MESSAGE"]
    assert any(r.startswith("conntrack ") for r in rows)
    assert "\x1b[" not in proc.stdout, "no colour without a terminal"
    doc = json.loads(run_cli("status", "--json").stdout)
    conntrack = next(r for r in doc if r["checker"] == "conntrack")
    assert conntrack["status"] in ("OK", "PROBLEM", "UNKNOWN")
    worst = {"OK": 0, "UNKNOWN": 2, "PROBLEM": 1}
    statuses = [r["status"] for r in doc if r["status"] != "SKIPPED"]
    expected = 1 if "PROBLEM" in statuses else (2 if "UNKNOWN" in statuses else 0)
    assert proc.returncode == expected
    assert set(statuses) <= set(worst)
    coloured = run_cli("status", "--color=always")
    assert "\x1b[" in coloured.stdout


def test_list_table_and_json(run_cli):
    table = run_cli("list")
    assert table.returncode == 0
    assert table.stdout.splitlines()[0].split() == [
        "CHECKER",
        "DISTRIBUTION",
        "STATUS",
        "DESCRIPTION",
    ]
    rows = json.loads(run_cli("list", "--json").stdout)
    assert {"conntrack"} <= {r["name"] for r in rows if r["status"] == "ok"}


def test_npd_config_writes_valid_custom_plugin_monitor_files(tmp_path, run_cli):
    proc = run_cli(
        "npd-config", "--output-dir", str(tmp_path), "--command", "/opt/hc/bin/healthcheck"
    )
    assert proc.returncode == 0, proc.stderr
    written = proc.stdout.split()
    assert str(tmp_path / "healthcheck-conntrack.json") in written
    for path in written:
        with open(path) as fh:
            doc = json.load(fh)
        assert validate_document(doc) == [], path
    doc = json.loads((tmp_path / "healthcheck-conntrack.json").read_text())
    assert doc["plugin"] == "custom"
    assert doc["rules"] == [
        {
            "type": "temporary",
            "reason": "ConntrackFull",
            "path": "/opt/hc/bin/healthcheck",
            "args": ["check", "conntrack"],
            "timeout": "7s",
        }
    ]
    assert doc["pluginConfig"]["invoke_interval"] == "30s"
    assert doc["pluginConfig"]["timeout"] == "7s"


def test_npd_config_bad_input(tmp_path, run_cli):
    unknown = run_cli("npd-config", "nope", "--output-dir", str(tmp_path))
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("healthcheck npd-config: unknown checker 'nope'")
    missing = run_cli("npd-config")
    assert missing.returncode == 2
    assert "the following arguments are required: --output-dir" in missing.stderr
    blocked = tmp_path / "file"
    blocked.write_text("")
    cannot = run_cli("npd-config", "--output-dir", str(blocked / "sub"))
    assert cannot.returncode == 2
    assert cannot.stderr.strip().endswith("Not a directory")
    assert "Traceback" not in unknown.stderr + missing.stderr + cannot.stderr


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({"plugin": "filelog"}, 'plugin must be "custom"'),
        ({"plugin": "custom", "pluginConfig": {"invoke_interval": "0s"}}, "must be > 0"),
        (
            {
                "plugin": "custom",
                "pluginConfig": {"timeout": "5s"},
                "rules": [{"type": "temporary", "timeout": "6s", "reason": "R"}],
            },
            "exceeds the global",
        ),
        (
            {"plugin": "custom", "rules": [{"type": "permanent", "condition": "C", "reason": "R"}]},
            "permanent problem C does not have preset default condition",
        ),
        ({"plugin": "custom", "pluginConfig": {"timeout": "5x"}}, 'invalid duration "5x"'),
    ],
)
def test_validator_catches_what_npd_rejects(doc, problem):
    assert any(problem in p for p in validate_document(doc))


def test_help_and_usage(run_cli):
    assert run_cli("--help").returncode == 0
    assert run_cli().returncode == 2
    helped = run_cli("check", "conntrack", "--help")
    assert helped.returncode == 0 and "--proc-root" in helped.stdout
    assert "(default: 90)" in helped.stdout
    nameless = run_cli("check")
    assert nameless.returncode == 2 and "name a checker" in nameless.stdout


def test_npd_config_echoes_an_unknown_name_on_one_bounded_line(run_cli, tmp_path):
    """Before: the name's repr went out whole (120 KB of stderr for a 90 KB argument)."""
    proc = run_cli("npd-config", "--output-dir", str(tmp_path / "out"), "a\nb" * 30000)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and len(proc.stderr.encode()) <= 600
    assert proc.stderr.startswith("healthcheck npd-config: unknown checker 'a b")
    assert not (tmp_path / "out").exists()
