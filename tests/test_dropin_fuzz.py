"""Hypothesis against the drop-ins' command lines: whatever argv NPD's config passes, the
answer is exit 0/1/2, at most one line on stdout (at most 80 bytes for a usage error, NPD's
condition message), and never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from healthcheck.sdk.pflag import FlagError, HelpRequested, report_usage_error
from healthcheck_plugins.component.cmd import healthchecker as healthchecker_cli
from healthcheck_plugins.log_counter.cmd import logcounter as logcounter_cli

HC_FLAGS = [*healthchecker_cli.NPD_FLAGS, "--v", "--vmodule", "--logtostderr", "--bogus"]
LC_FLAGS = [
    "--journald-source",
    "--log-path",
    "--lookback",
    "--delay",
    "--pattern",
    "--revert-pattern",
    "--count",
    "--v",
    "--vmodule",
    "--log_dir",
]
VALUES = st.one_of(
    st.sampled_from(
        ["", "0", "010", "0x2", " 3", "٣", "5x", "2562048h", "-1s", "true", "kubelet", "cri"]
    ),
    st.sampled_from(["1:a", "0:x", "1:a(", r"\C", "a|b", "(?P<é>x)", "x{1001}", "/nonexistent"]),
    st.text(max_size=12),
)


def _argv(flags):
    token = st.one_of(
        st.builds(lambda f, v: f"{f}={v}", st.sampled_from(flags), VALUES),
        st.sampled_from(flags),
        VALUES,
        st.sampled_from(["-v", "-v3", "-x", "-h", "--", "-", "---x"]),
    )
    return st.lists(token, max_size=6)


def _usage_error_is_one_short_line(capsys, message: str) -> None:
    assert report_usage_error(message) == 2
    out, err = capsys.readouterr()
    assert out.endswith("\n") and out.count("\n") == 1
    assert len(out.encode()) <= 81
    assert err.count("\n") <= 1


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_argv(HC_FLAGS))
def test_health_checker_flags_fuzz(capsys, argv):
    try:
        healthchecker_cli.prepare(argv)
    except HelpRequested:
        pass
    except FlagError as exc:
        _usage_error_is_one_short_line(capsys, str(exc))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(_argv(LC_FLAGS))
def test_log_counter_flags_fuzz(capsys, argv):
    try:
        logcounter_cli.prepare(argv)
    except HelpRequested:
        pass
    except FlagError as exc:
        _usage_error_is_one_short_line(capsys, str(exc))


BIN = Path(sys.executable).parent


@pytest.mark.parametrize("script", ["health-checker", "log-counter"])
@settings(max_examples=15, deadline=None)
@given(argv=st.lists(VALUES, max_size=3), flag=st.sampled_from(HC_FLAGS + LC_FLAGS))
def test_the_real_commands_answer_in_protocol(script, argv, flag, tmp_path_factory):
    """The installed commands, end to end: the probe fails fast (nothing listens on port 1, no
    journal), repair is off, and the answer is still the protocol's."""
    full = [f"{flag}={argv[0]}" if argv else flag, *argv[1:]]
    assume(not any("\x00" in arg for arg in full))  # exec cannot pass a NUL: no argv holds one
    if script == "health-checker":
        full.append("--enable-repair=false")
    else:
        full = ["--journald-source=x", f"--log-path={tmp_path_factory.mktemp('j')}", *full]
    proc = subprocess.run(
        [str(BIN / script), *full],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "KUBELET_PORT": "1", "KUBEPROXY_PORT": "1"},
        stdin=subprocess.DEVNULL,
    )
    out = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode in (0, 1, 2), (full, out, proc.stderr)
    assert out.count("\n") <= 1 and (out == "" or out.endswith("\n"))
    assert b"Traceback" not in proc.stderr
    if proc.returncode == 2 and not out.startswith(("error checking", "error watching")):
        assert len(out.encode()) <= 81, (full, out)
