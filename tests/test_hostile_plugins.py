"""Issue 11, invariants 1 and 6: plugins cannot corrupt the host, and their text is bounded.

A real third-party plugin distribution (tests/hostile_plugins.py) is installed for the child
process only; it prints on stdout at import and in its check, returns a 4 MiB message of
astral characters, newlines, escapes and quotes, mutates its Result, calls sys.exit(), raises
a BaseException of its own, and hangs or exits in applies().
"""

from __future__ import annotations

import json

import pytest

from .hostile_plugins import install
from .k8s_double import write_kubeconfig

NODE = "node-1"


@pytest.fixture
def hostile_env(tmp_path):
    return install(tmp_path / "site")


def one_protocol_line(stdout: str) -> str:
    assert stdout.count("\n") <= 1, stdout[:300]
    line = stdout.rstrip("\n")
    assert len(line.encode()) <= 80, line
    assert line.isprintable()
    return line


def test_plugin_stdout_never_reaches_list_json(run_cli, hostile_env):
    proc = run_cli("list", "--json", env=hostile_env)
    assert proc.returncode == 0, proc.stderr
    rows = {row["name"]: row for row in json.loads(proc.stdout)}
    assert rows["hostile-huge"]["status"] == "ok"
    assert "hostile plugin: hello on stdout at import" in proc.stderr


def test_list_table_is_one_line_per_checker_whatever_the_description(run_cli, hostile_env):
    rows = json.loads(run_cli("list", "--json", env=hostile_env).stdout)
    proc = run_cli("list", env=hostile_env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 + len(rows)  # the header, then one line per checker
    assert [line.split()[0] for line in lines[1:]] == [row["name"] for row in rows]


def test_check_output_is_one_line_whatever_the_plugin_prints_or_returns(run_cli, hostile_env):
    proc = run_cli("check", "hostile-huge", env=hostile_env)
    assert proc.returncode == 1
    line = one_protocol_line(proc.stdout)
    assert line.startswith("\U0001f4a9")
    assert "hello on stdout from check()" in proc.stderr
    assert "raw write to fd 1" in proc.stderr
    as_json = run_cli("check", "hostile-huge", "--json", env=hostile_env)
    record = json.loads(as_json.stdout)  # nothing else on stdout
    assert record["status"] == "PROBLEM" and len(record["message"].encode()) <= 80


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("hostile-exits", "hostile-exits check exited (sys.exit(3))"),
        ("hostile-mutated", "hostile-mutated check returned status 1, not a healthcheck.Status"),
        ("hostile-weird", "hostile-weird check failed: Weird: a BaseException of its own"),
        ("hostile-bytes", "hostile-bytes check returned a bytes message, not a str"),
    ],
)
def test_check_gives_the_true_reason(run_cli, hostile_env, name, says):
    proc = run_cli("check", name, env=hostile_env)
    assert proc.returncode == 2
    assert one_protocol_line(proc.stdout).startswith(says[:80])
    assert "Traceback" not in proc.stderr


def test_status_survives_every_hostile_plugin(run_cli, hostile_env):
    proc = run_cli("status", "--json", env=hostile_env, timeout=60)
    assert proc.returncode == 1, proc.stderr  # huge is a PROBLEM, which outranks UNKNOWN
    rows = {row["checker"]: row for row in json.loads(proc.stdout)}
    assert rows["hostile-exits"]["status"] == "UNKNOWN"
    assert "exited (sys.exit(3))" in rows["hostile-exits"]["message"]
    assert rows["hostile-mutated"]["status"] == "UNKNOWN"
    assert rows["hostile-huge"]["status"] == "PROBLEM"
    hung = rows["hostile-hang-applies"]
    assert (hung["status"], hung["message"]) == (
        "UNKNOWN",
        "applies() did not return within 2s",
    )
    exited = rows["hostile-exit-applies"]
    assert exited["status"] == "UNKNOWN" or exited["status"] == "SKIPPED"
    assert "SystemExit: 4" in exited["message"]
    for row in rows.values():
        assert len(row["message"].encode()) <= 80 and row["message"].isprintable()
    assert "Traceback" not in proc.stderr


def test_agent_sends_bounded_conditions_and_events(run_cli, double, hostile_env, tmp_path):
    """One PATCH carries every condition: a 4 MiB message must not make it 4 MiB."""
    config = tmp_path / "agent.yaml"
    names = ["huge", "mutated", "exits", "weird", "bytes"]
    config.write_text(
        'metrics: ""\nserver: ""\nchecks:\n'
        + "".join(f"  - checker: hostile-{n}\n" for n in names)
        + "  - checker: hostile-huge\n    name: huge-events\n    type: temporary\n"
        "    reason: HugeEvent\n"
    )
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", double.url)
    proc = run_cli(
        "agent",
        "--config",
        str(config),
        "--kubeconfig",
        kubeconfig,
        "--once",
        "--node-name",
        NODE,
        env=hostile_env,
        timeout=60,
    )
    assert proc.returncode in (1, 2), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    writes = double.writes()
    assert writes
    assert max(len(r.body) for r in writes) < 16 * 1024
    conditions = double.conditions(NODE)
    for cond in conditions.values():
        assert len(cond["message"].encode()) <= 1024 and cond["message"].isprintable()
    assert "exited (sys.exit(3))" in conditions["HostileExits"]["message"]
    assert "not a healthcheck.Status" in conditions["HostileMutated"]["message"]
    for line in proc.stderr.splitlines():
        assert len(line.encode()) <= 4096 + 200


def test_in_process_callers_with_redirected_stdout_get_ours_and_only_ours(tmp_path, monkeypatch):
    """cli.main() run in-process with sys.stdout redirected to a buffer (no fd 1 involved)."""
    import contextlib
    import io
    import sys

    from healthcheck import _cli as cli

    install(tmp_path / "site", name="hostile_inproc")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert cli.main(["list", "--json"]) == 0
        assert sys.stdout is out  # given back
    names = [row["name"] for row in json.loads(out.getvalue())]
    assert "hostile-huge" in names
    assert "hello on stdout at import" in err.getvalue()
