"""The installed command answers at all: version, usage, and exit codes for bad commands."""

from healthcheck import __version__


def test_version(run_cli):
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"healthcheck {__version__}"


def test_unknown_command_is_one_line_exit_2(run_cli):
    proc = run_cli("frobnicate")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown command 'frobnicate'" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
