"""healthcheck.sdk.console: the one main() wrapper and the checker runner the front doors use,
and the rule that the front doors under plugins/ use no private host module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from healthcheck import OptionError
from healthcheck.sdk.console import UsageError, console_main, find_checker, run_checker

PLUGINS = Path(__file__).resolve().parent.parent / "plugins"


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "healthcheck" and any(p.startswith("_") for p in parts[1:]):
                found.append(f"{path.name}:{node.lineno}: {name}")
    return found


@pytest.mark.parametrize(
    "path",
    [
        *sorted(PLUGINS.glob("*/cmd/*.py")),
        PLUGINS / "maintenance_events" / "hostlog_command.py",
        PLUGINS / "maintenance_events" / "checker.py",
        PLUGINS / "log_counter" / "checker.py",
    ],
    ids=lambda p: str(p.relative_to(PLUGINS)),
)
def test_front_doors_under_plugins_import_no_private_host_module(path):
    assert _private_imports(path) == []


def test_the_private_import_scan_sees_a_private_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from healthcheck import _host\nimport healthcheck._runner\n")
    assert len(_private_imports(bad)) == 2


def test_run_checker_by_name_with_raw_options(tmp_path):
    base = tmp_path / "sys/net/netfilter"
    base.mkdir(parents=True)
    (base / "nf_conntrack_count").write_text("95\n")
    (base / "nf_conntrack_max").write_text("100\n")
    outcome = run_checker("conntrack", {"proc_root": str(tmp_path), "threshold": "90"})
    assert outcome.result.status == 1 and not outcome.timed_out
    outcome = run_checker("conntrack", {"proc_root": str(tmp_path), "threshold": 96})
    assert outcome.result.status == 0
    with pytest.raises(OptionError) as caught:
        run_checker("conntrack", {"threshold": "x"})
    assert caught.value.key == "threshold"
    with pytest.raises(LookupError, match="unknown checker 'nope'"):
        find_checker("nope")


# console_main's own cases: a body that raises what real front doors raise only by accident
# (a bug, Ctrl-C) is the one way to produce them on demand.


def test_console_main_turns_each_ending_into_one_exit_code(capsys):
    def body(argv: list[str]) -> int:
        kind = argv[0]
        if kind == "usage":
            raise UsageError("prog: bad input\nsecond line")
        if kind == "interrupt":
            raise KeyboardInterrupt
        if kind == "bug":
            raise RuntimeError("no\nway")
        return len(argv)

    assert console_main(body, ["ok", "x"], prog="prog") == 2
    assert console_main(body, ["usage"], prog="prog") == 2
    assert capsys.readouterr().err == "prog: bad input second line\n"
    assert console_main(body, ["interrupt"], prog="prog") == 130
    assert console_main(body, ["bug"], prog="prog") == 2
    assert capsys.readouterr().err == "prog: internal error: RuntimeError: no way\n"
    seen = []
    assert (
        console_main(body, ["usage"], prog="p", on_usage_error=lambda m: seen.append(m) or 7) == 7
    )
    assert seen == ["prog: bad input\nsecond line"]


@pytest.mark.parametrize(
    "argv, code",
    [
        (["healthcheck", "check", "conntrack", "--threshold", "x"], 2),
        (["healthcheck", "check", "conntrack", "--json", "--threshold", "x"], 2),
        (["healthcheck", "nope"], 2),
        (["healthcheck", "--help"], 0),
    ],
)
def test_a_closed_stdout_is_no_traceback_for_healthcheck_either(argv, code):
    """A usage error written to a stdout nobody reads: still one exit code, nothing on stderr
    but the error's own line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [str(Path(sys.executable).parent / argv[0]), *argv[1:]],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.returncode == code
