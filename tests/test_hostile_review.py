"""Issue 11, second review: defects reported against the hardened main, each as a test that
failed before its fix (Latin-1 request heads, a FIFO as the agent config, malformed node
conditions, non-ASCII checker names, argv echoed by npd-config, ``status`` moving a baseline,
Retry-After and deeply nested JSON on the remediation path)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from healthcheck import Checker, Condition
from healthcheck._agent import kube
from healthcheck.sdk import http

from .hostile_plugins import install
from .test_hostile_input import one_error_line, serve_once

# --------------------------------------------------------------------------- HTTP request head


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer tok\u0663en"}, {"X-\u00e9\u2603": "1"}],
)
def test_a_header_outside_latin_1_is_an_http_error(headers):
    """A header value from outside (a token file) that HTTP cannot carry raised
    UnicodeEncodeError out of Connection.request."""
    path = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    with pytest.raises(http.HttpError, match="not Latin-1"):
        http.request("GET", "/x", unix_socket=path, headers=headers, timeout=5)
    # Latin-1 itself is still sent as it is.
    path = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert http.request("GET", "/x", unix_socket=path, headers={"X": "caf\u00e9"}).status == 200


# --------------------------------------------------------------------------- agent config file


def _check_config(bin_path, path: str, timeout: float = 30):
    return subprocess.run(
        [bin_path("healthcheck"), "agent", "--config", path, "--check-config"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_fifo_as_the_config_is_one_line_and_exit_2_without_waiting(bin_path, tmp_path):
    fifo = tmp_path / "agent.yaml"
    os.mkfifo(fifo)
    line = one_error_line(_check_config(bin_path, str(fifo)))
    assert line == f"healthcheck agent: {fifo}: cannot read: not a regular file"


def test_a_directory_as_the_config_is_one_line(bin_path, tmp_path):
    assert one_error_line(_check_config(bin_path, str(tmp_path))).endswith(
        ": cannot read: not a regular file"
    )


def test_a_symlink_to_the_config_is_followed(bin_path, tmp_path):
    """A ConfigMap mount is a chain of symbolic links: reading one is fine, only what it ends
    at must be a regular file."""
    (tmp_path / "real.yaml").write_text("checks: []\n")
    (tmp_path / "agent.yaml").symlink_to(tmp_path / "real.yaml")
    proc = _check_config(bin_path, str(tmp_path / "agent.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith(": OK (0 checks)\n")


def test_the_config_path_is_echoed_bounded_and_on_one_line(bin_path, tmp_path):
    missing = str(tmp_path / ("a\nb" + "x" * 200)) + "/" + "y" * 4000
    line = one_error_line(_check_config(bin_path, missing))
    assert "cannot read" in line or "x" * 100 in line
    assert len(line.encode()) <= 300


# ---------------------------------------------------------------- node conditions from the API


def test_adopt_skips_malformed_node_conditions_and_says_so_once(double, tmp_path):
    """The double serves a ``conditions`` no real API server would (not a list, entries with a
    list as ``type``): the agent must still adopt what it can and log one bounded line."""
    from .k8s_double import write_kubeconfig
    from .test_agent_reporter import NODE, builder, spec

    make = builder(write_kubeconfig(tmp_path / "kc", double.url), NODE)
    for conditions in (7, [{"type": ["KubeletUnhealthy"], "status": "True"}, "x", None]):
        double.nodes[NODE]["status"]["conditions"] = conditions
        lines: list[str] = []
        reporter, table, _ = make([spec()], log=lines.append)
        reporter.sync()
        assert table.get("KubeletUnhealthy") is None  # nothing adopted, nothing raised
        skipped = [line for line in lines if "malformed node condition" in line]
        assert len(skipped) == 1 and len(skipped[0]) <= 200, lines


# ------------------------------------------------------------------------------ checker names


@pytest.mark.parametrize("name", ["caf\u00e9", "x\u0663", "\u00e9t\u00e9", "a\u00b2"])
def test_checker_names_are_ascii(name):
    with pytest.raises(ValueError, match="letters, digits and dashes"):
        Checker(
            name,
            description="d",
            check=lambda ctx: None,
            condition=Condition("", "Bad", permanent=False),
        )


# ------------------------------------------------------------------------- argv echoed by cli


def test_npd_config_prints_one_line_per_file_whatever_the_output_dir(run_cli, tmp_path):
    out_dir = tmp_path / "a\nb"
    proc = run_cli("npd-config", "conntrack", "--output-dir", str(out_dir))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith("healthcheck-conntrack.json"), proc.stdout
    assert (out_dir / "healthcheck-conntrack.json").exists()


# ------------------------------------------------------------------- status only looks, ever

STATE_PLUGIN = """
import copy

from healthcheck import Checker, Condition
from healthcheck_plugins import conntrack

# conntrack with drop checking on by default, over a proc tree and state dir of the test's.
CHECKER = Checker(
    "conntrack-drops",
    description="conntrack with --check-drops on",
    check=conntrack.check,
    condition=Condition("", "ConntrackFull", permanent=False),
    options=[copy.copy(o) for o in conntrack.CHECKER.options],
)
for option in CHECKER.options:
    if option.name == "check_drops":
        option.default = True
    elif option.name == "proc_root":
        option.default = {proc!r}
    elif option.name == "state_dir":
        option.default = {state!r}


from healthcheck import hookimpl


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
"""


def test_status_does_not_move_the_conntrack_drop_baseline(run_cli, tmp_path):
    """``status`` with drop checking on used to record the counters it saw, so the next real
    run compared against them and missed those drops."""
    from .test_conntrack import _stat_row, make_proc

    proc_root = make_proc(tmp_path / "proc", 10, 100, stats=[_stat_row(drop=1)])
    state = tmp_path / "state"
    state.mkdir()
    env = install(tmp_path / "site", STATE_PLUGIN.format(proc=str(proc_root), state=str(state)))
    drops = ["--proc-root", str(proc_root), "--check-drops", "--state-dir", str(state)]
    first = run_cli("check", "conntrack", *drops)  # the real run: records the baseline
    assert first.returncode == 0, first.stdout + first.stderr
    recorded = {p.name: p.read_bytes() for p in state.iterdir()}
    assert recorded

    make_proc(proc_root, 10, 100, stats=[_stat_row(drop=9)])  # the kernel drops 8 more
    shown = run_cli("status", "--json", env=env, timeout=60)
    rows = {r["checker"]: r for r in json.loads(shown.stdout)}
    assert rows["conntrack-drops"]["status"] == "PROBLEM", rows["conntrack-drops"]
    assert {p.name: p.read_bytes() for p in state.iterdir()} == recorded

    second = run_cli("check", "conntrack", *drops)  # the next real run still sees the drops
    assert second.returncode == 1 and "drop +8" in second.stdout, second.stdout


# ------------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0", 0.0),
        (" 12 ", 12.0),
        ("86400", 86400.0),
        ("86401", None),
        ("nan", None),
        ("inf", None),
        ("1_0", None),
        ("1e3", None),
        ("\u0663", None),
        ("\u00b2", None),
        ("-1", None),
        ("+5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("9" * 5000, None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_ascii_delay_seconds_of_at_most_a_day(value, seconds):
    assert kube.retry_after_seconds(value) == seconds


def test_a_retry_after_of_inf_does_not_stretch_the_backoff(double, tmp_path):
    """``float("inf")`` used to be honoured up to the 60 s cap: the agent went quiet for a
    minute on a header no server means."""
    from healthcheck import Status

    from .k8s_double import write_kubeconfig
    from .test_agent_reporter import NODE, builder, spec

    reporter, table, clock = builder(write_kubeconfig(tmp_path / "kc", double.url), NODE)()
    reporter.step()
    table.apply(spec(), Status.PROBLEM, "down")
    reporter.changed()
    double.inject((429, "inf"))
    clock.advance(0.5)
    assert reporter.step() <= 8.0  # the ordinary backoff, not RETRY_AFTER_CAP


# ------------------------------------------------------------ JSON nested past Python's stack


def test_remediation_api_reads_deeply_nested_json_as_not_json(double, tmp_path):
    from healthcheck._agent.kube import ApiError, load_client_config
    from healthcheck._agent.remediation.api import RemediationApi

    from .k8s_double import write_kubeconfig

    api = RemediationApi(load_client_config(write_kubeconfig(tmp_path / "kc", double.url)), 5.0)
    double.inject(("raw", 200, b"[" * 100_000 + b"]" * 100_000))
    with pytest.raises(ApiError, match="not JSON"):  # RemediationApi reads through KubeApi's
        api.count_nodes()


# --------------------------------------------------------- huge messages cost a bounded amount


def _peak_bytes(call) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


HUGE_WORDS = "ab " * (4 << 20)  # 12 MiB of short words: splitting it all is ~300 MB of strings


def test_describe_error_looks_only_at_the_start_of_a_huge_message():
    from healthcheck._protocol import describe_error

    exc = RuntimeError(HUGE_WORDS)
    assert _peak_bytes(lambda: describe_error(exc)) < 1 << 20
    assert describe_error(exc).startswith("RuntimeError: ab ab")


def test_an_api_error_message_looks_only_at_the_start_of_a_huge_status_message():
    """The API server's Status ``message`` (up to the 4 MiB body) was split whole into words."""
    body = json.dumps({"kind": "Status", "message": HUGE_WORDS[: 3 << 20]}).encode()
    peak = _peak_bytes(lambda: kube._status_message(body))
    # json.loads itself holds the 3 MiB message once; splitting it used to add ~80 MB.
    assert peak < 12 << 20, peak
    assert kube._status_message(body).startswith("ab ab")
    assert len(kube._status_message(body)) <= 200
