"""Subcommands from plugins (the healthcheck_commands hook) through real installed metadata:
one that works, ones that are broken in each way we know of, one that tries to take `check`."""

from __future__ import annotations

import pytest
from test_cli import imported_modules
from test_plugins_host import _fake_dist

COMMANDS = """
    import sys
    from healthcheck import hookimpl
    from healthcheck.sdk.console import Command, UsageError, argument_parser

    def hello(argv):
        parser = argument_parser("healthcheck hello", "say hello")
        parser.add_argument("names", nargs="*")
        parser.add_argument("--count", type=int, default=1)
        args = parser.parse_args(argv)
        print("hello " + " ".join(args.names))
        return 3

    def boom(argv):
        raise RuntimeError("kaboom\\nsecond line")

    def refuse(argv):
        raise UsageError("healthcheck refuse: no")

    class Escape(BaseException):
        pass

    def escape(argv):
        raise Escape("not an Exception")

    def leave(argv):
        sys.exit(int(argv[0]) if argv else None)

    @hookimpl
    def healthcheck_commands():
        return [
            Command("hello", "say hello", hello),
            Command("boom", "always fails", boom),
            Command("refuse", "always refuses", refuse),
            Command("escape", "raises a BaseException", escape),
            Command("leave", "calls sys.exit", leave),
            Command("silent", "returns no exit code", lambda argv: None),
            Command("check", "tries to take the built-in check", lambda argv: 0),
            Command("no-run", "has nothing to run", None),
            Command("Bad Name", "cannot be typed", lambda argv: 0),
            "not a command",
        ]
"""


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    _fake_dist(
        site, "hello_commands", {"hello-commands": "hello_commands"}, {"hello_commands": COMMANDS}
    )
    _fake_dist(
        site,
        "raising_hook",
        {"raising-hook": "raising_hook"},
        {
            "raising_hook": """
            from healthcheck import hookimpl
            @hookimpl
            def healthcheck_commands():
                raise RuntimeError("hook broke")
            """
        },
    )
    _fake_dist(
        site,
        "bad_commands",
        {"bad-commands": "bad_commands"},
        {
            "bad_commands": """
            from healthcheck import hookimpl
            @hookimpl
            def healthcheck_commands():
                return ["not a command"]
            """
        },
    )
    _fake_dist(
        site,
        "last_word",
        {"last-word": "last_word"},
        {
            "last_word": """
            from healthcheck import hookimpl
            from healthcheck.sdk.console import Command

            # trylast makes pluggy list this implementation first: it must still not win.
            @hookimpl(trylast=True)
            def healthcheck_commands():
                return [Command("host-event-log", "a shadow", lambda argv: 0)]
            """
        },
    )
    return {"PYTHONPATH": str(site)}


def test_a_plugin_command_runs_with_its_arguments_and_exit_code(run_cli, site):
    proc = run_cli("hello", "a", "b", env=site)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "hello a b\n", "")
    bad = run_cli("hello", "--count", "x", env=site)
    assert bad.returncode == 2
    assert bad.stderr == "healthcheck hello: argument --count: invalid int value: 'x'\n"


@pytest.mark.parametrize(
    "command, line",
    [
        (
            "boom",
            "healthcheck boom: command failed (hello-commands): RuntimeError: kaboom second line",
        ),
        ("refuse", "healthcheck refuse: no"),
        (
            "escape",
            "healthcheck escape: command failed (hello-commands): Escape: not an Exception",
        ),
        ("silent", "healthcheck silent: command returned None, not an exit code"),
        (
            "no-run",
            "healthcheck: command 'no-run' is broken (hello-commands): command 'no-run' needs a "
            "str help and a callable run",
        ),
    ],
)
def test_a_failing_plugin_command_is_one_line_and_exit_2(run_cli, site, command, line):
    proc = run_cli(command, env=site)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", line + "\n")


def test_a_command_may_exit_through_sys_exit(run_cli, site):
    assert run_cli("leave", "4", env=site).returncode == 4
    assert run_cli("leave", env=site).returncode == 0


def test_trylast_does_not_let_a_plugin_take_a_built_in_plugins_command(run_cli, site):
    helped = run_cli("--help", env=site).stdout
    assert "  host-event-log append cloud maintenance events to host_event.log\n" in helped
    assert "command 'host-event-log' is already provided by node-healthcheck" in helped
    proc = run_cli("host-event-log", "--help", env=site)
    assert proc.returncode == 0 and "host_event.log" in proc.stdout, proc.stdout


def test_a_plugin_cannot_shadow_a_built_in_command(run_cli, site):
    proc = run_cli("check", "conntrack", env=site)
    assert proc.stdout.startswith("Conntrack table usage"), proc.stdout
    helped = run_cli("--help", env=site)
    assert helped.returncode == 0
    commands = [line.split()[0] for line in helped.stdout.splitlines() if line.startswith("  ")]
    assert commands.count("check") == 1
    assert "  check: command 'check' is a built-in command" in helped.stdout


def test_help_lists_plugin_commands_and_says_which_were_left_out(run_cli, site):
    helped = run_cli("--help", env=site).stdout
    assert "  hello          say hello (from hello-commands)\n" in helped
    assert "  host-event-log append cloud maintenance events to host_event.log\n" in helped
    left_out = helped.split("plugin commands left out:\n", 1)[1]
    for line in [
        "  no-run: command 'no-run' needs a str help and a callable run",
        "  (plugin hello-commands of hello-commands): command name 'Bad Name': use lower-case",
        "  (plugin hello-commands of hello-commands): 'not a command' is not a healthcheck.sdk.",
        "  (plugin raising-hook of raising-hook): healthcheck_commands() failed: RuntimeError: "
        "hook broke",
        "  (plugin bad-commands of bad-commands): 'not a command' is not a healthcheck.sdk.",
    ]:
        assert line in left_out, left_out
    # A hook that raises or returns nonsense takes no command of another plugin with it.
    assert "  refuse         always refuses (from hello-commands)" in helped
    unknown = run_cli("nope", env=site)
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "healthcheck: unknown command 'nope' (try 'healthcheck --help')\n",
    )


def test_check_never_loads_pluggy_for_plugin_commands(bin_path, site, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", site["PYTHONPATH"])
    names = imported_modules(bin_path("healthcheck"), "check", "conntrack")
    assert "pluggy" not in names and "hello_commands" not in names
    assert "healthcheck._plugin_commands" not in names
