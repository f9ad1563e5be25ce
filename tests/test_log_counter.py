"""log-counter against real journal files: the counting, the window, and the drop-in command.

Counting is checked in-process with a fixed ``now`` through both journal backends; the commands
(``log-counter`` and ``healthcheck check log-counter``) run as real processes against journals
timestamped relative to the real clock.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from journalfile import Record

from healthcheck.sdk.journal import JournalError
from healthcheck_plugins.log_counter.checker import CHECKER, count_matches

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOW = 1_700_000_000.0
UPTIME = 86_400.0
BACKENDS = ["native", "journalctl"]


def options(**values):
    opts = CHECKER.defaults()
    for name, value in values.items():
        setattr(opts, name, value)
    return opts


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def count(directory, backend, now=NOW, uptime=UPTIME, **values):
    values.setdefault("journald_source", "kubelet")
    values.setdefault("lookback", "1h")
    return count_matches(options(log_path=directory, **values), now, uptime, backend=backend)


# ------------------------------------------------- spec 8.2 TestCount, against real journals


def test_no_logs_count_zero(make_journal, backend):
    directory = make_journal([Record(NOW - 5, "0", "other")])
    assert count(directory, backend, pattern="") == 0


def test_one_matching_log_before_start(make_journal, backend):
    directory = make_journal([Record(NOW - 1, "0", "kubelet")])
    assert count(directory, backend, pattern="0") == 1


def test_one_non_matching_log(make_journal, backend):
    directory = make_journal([Record(NOW - 1, "1", "kubelet")])
    assert count(directory, backend, pattern="0") == 0


def test_log_newer_than_start_is_not_counted(make_journal, backend):
    directory = make_journal([Record(NOW + 1, "0", "kubelet")])
    assert count(directory, backend, pattern="0") == 0


def test_counting_stops_at_the_first_newer_entry(make_journal, backend):
    directory = make_journal(
        [
            Record(NOW - 3, "0", "kubelet"),
            Record(NOW - 2, "0", "kubelet"),
            Record(NOW - 1, "1", "kubelet"),
            Record(NOW + 1, "0", "kubelet"),
            Record(NOW + 2, "0", "kubelet"),
        ]
    )
    assert count(directory, backend, pattern="0") == 2


# --------------------------------------------------------------------------- window edges


def test_window_edges_are_inclusive(make_journal, backend):
    directory = make_journal(
        [
            Record(NOW - 600.000001, "hit", "kubelet"),  # one microsecond before the start
            Record(NOW - 600, "hit", "kubelet"),  # exactly at the start
            Record(NOW - 300, "hit", "kubelet"),
            Record(NOW, "hit", "kubelet"),  # exactly at the moment counting started
            Record(NOW + 0.000001, "hit", "kubelet"),
        ]
    )
    assert count(directory, backend, pattern="hit", lookback="10m") == 3


def test_empty_lookback_reads_no_history(make_journal, backend):
    directory = make_journal([Record(NOW - 1, "hit", "kubelet")])
    assert count(directory, backend, pattern="hit", lookback="") == 0


def test_delay_after_boot_skips_early_logs(make_journal, backend):
    boot = NOW - 600
    directory = make_journal(
        [
            Record(boot + 10, "Started kubelet", "kubelet"),
            Record(boot + 200, "Started kubelet", "kubelet"),
            Record(boot + 400, "Started kubelet", "kubelet"),
        ]
    )
    assert count(directory, backend, uptime=600, pattern="Started kubelet", lookback="1h") == 3
    assert (
        count(directory, backend, uptime=600, pattern="Started kubelet", delay="5m", lookback="1h")
        == 1
    )
    # A delay longer than the uptime puts the start in the future: nothing is counted.
    assert count(directory, backend, uptime=600, pattern="", delay="20m") == 0


def test_only_the_requested_identifier_is_counted(make_journal, backend):
    directory = make_journal(
        [
            Record(NOW - 30, "boom", "kubelet"),
            Record(NOW - 20, "boom", "kubeletx"),
            Record(NOW - 10, "boom", "dockerd", unit="kubelet.service"),
        ]
    )
    assert count(directory, backend, pattern="boom") == 1
    assert count(directory, backend, pattern="boom", journald_source="containerd") == 0


def test_revert_pattern_discounts_restarts(make_journal, backend):
    started = "Started kubelet.service - Kubernetes kubelet."
    stopping = "Stopping kubelet.service - Kubernetes kubelet..."
    directory = make_journal(
        [
            Record(NOW - 50, started, "systemd"),
            Record(NOW - 40, stopping, "systemd"),
            Record(NOW - 39, started, "systemd"),
            Record(NOW - 30, started, "systemd"),
        ]
    )
    kwargs = {
        "journald_source": "systemd",
        "pattern": "Started (Kubernetes kubelet|kubelet.service|kubelet.service - .*).",
    }
    assert count(directory, backend, **kwargs) == 3
    revert = "Stopping (Kubernetes kubelet|kubelet.service|kubelet.service - .*)..."
    assert count(directory, backend, revert_pattern=revert, **kwargs) == 2


def test_multiline_pattern_spans_consecutive_entries(make_journal, backend):
    directory = make_journal(
        [
            Record(NOW - 5, "panic: oops", "kubelet"),
            Record(NOW - 4, "goroutine 1 [running]:", "kubelet"),
            Record(NOW - 3, "goroutine 1 [running]:", "kubelet"),
        ]
    )
    assert count(directory, backend, pattern=r"panic: \w+\ngoroutine \d+ \[running\]:") == 1


def test_messages_are_trimmed_before_matching(make_journal, backend):
    directory = make_journal([Record(NOW - 5, "  Started kubelet.  \n", "kubelet")])
    assert count(directory, backend, pattern="Started kubelet[.]") == 1


def test_corrupt_journal_is_an_error(tmp_path, backend):
    (tmp_path / "system.journal").write_bytes(b"LPKSHHRH" + os.urandom(8000))
    with pytest.raises(JournalError, match="corrupt journal file"):
        count(str(tmp_path), backend, pattern="")


# ------------------------------------------------------------------------------- commands


@pytest.fixture
def live_journal(make_journal):
    """A journal whose entries are timestamped relative to the real clock."""
    now = time.time()
    return make_journal(
        [
            Record(now - 3600, "Started Kubernetes kubelet.", "systemd"),  # outside 20m
            Record(now - 900, "Started Kubernetes kubelet.", "systemd"),
            Record(now - 600, "Stopping Kubernetes kubelet...", "systemd"),
            Record(now - 599, "Started Kubernetes kubelet.", "systemd"),
            Record(now - 300, "Started Kubernetes kubelet.", "docker"),
            Record(now - 60, "Started kubelet.service - Kubernetes kubelet.", "systemd"),
            Record(now + 3600, "Started Kubernetes kubelet.", "systemd"),  # after the count start
        ]
    )


DAY = 86400.0  # the node has been up long enough that no window here is cut at the boot
KUBELET_PATTERN = "--pattern=Started (Kubernetes kubelet|kubelet.service|kubelet.service - .*)."
KUBELET_REVERT = (
    "--revert-pattern=Stopping (Kubernetes kubelet|kubelet.service|kubelet.service - .*)..."
)


def _one_line_error(proc, text):
    """Exit 2, one line on stdout; a usage error cut at 80 bytes is whole on stderr."""
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout.endswith("\n") and proc.stdout.count("\n") == 1
    assert text in proc.stdout or text in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_threshold_met_prints_found_and_exits_1(run_cli, live_journal):
    args = ["--journald-source=systemd", f"--log-path={live_journal}", "--lookback=20m"]
    proc = run_cli(*args, "--count=3", KUBELET_PATTERN, script="log-counter", min_uptime=DAY)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == "Found 3 matching logs, which meets the threshold of 3\n"
    proc = run_cli(
        *args, "--count=3", KUBELET_PATTERN, KUBELET_REVERT, script="log-counter", min_uptime=DAY
    )
    assert (proc.returncode, proc.stdout) == (0, "")


def test_below_threshold_is_silent_exit_0(run_cli, live_journal):
    proc = run_cli(
        "--journald-source",
        "systemd",
        "--log-path",
        live_journal,
        "--lookback",
        "20m",
        "--count",
        "4",
        KUBELET_PATTERN,
        script="log-counter",
        min_uptime=DAY,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_default_count_is_1_and_klog_flags_are_accepted(run_cli, live_journal):
    proc = run_cli(
        "--journald-source=docker",
        f"--log-path={live_journal}",
        "--lookback=20m",
        "-v",
        "2",
        "--logtostderr",
        "--vmodule=x=1",
        script="log-counter",
        min_uptime=DAY,
    )
    assert proc.returncode == 1
    assert proc.stdout == "Found 1 matching logs, which meets the threshold of 1\n"


def test_healthcheck_check_log_counter_gives_the_same_answer(run_cli, live_journal):
    args = ["--journald-source=systemd", f"--log-path={live_journal}", "--lookback=20m"]
    proc = run_cli("check", "log-counter", *args, "--count=3", KUBELET_PATTERN, min_uptime=DAY)
    assert proc.returncode == 1
    assert proc.stdout == "Found 3 matching logs, which meets the threshold of 3\n"
    proc = run_cli("check", "log-counter", *args, "--count=3", "--pattern=[")
    _one_line_error(proc, 'invalid pattern "[": error parsing regexp: missing closing ]: `[`')


def test_journalctl_fallback_when_systemd_python_is_missing(run_cli, live_journal, tmp_path):
    shadow = tmp_path / "shadow" / "systemd"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('systemd-python hidden by the test')\n")
    args = ["--journald-source=systemd", f"--log-path={live_journal}", "--lookback=20m"]
    env = {"PYTHONPATH": str(tmp_path / "shadow")}
    proc = run_cli(
        *args, "--count=3", KUBELET_PATTERN, script="log-counter", env=env, min_uptime=DAY
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == "Found 3 matching logs, which meets the threshold of 3\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lookback=20m"], "failed to filter journal log, empty source is not allowed"),
        (["--journald-source="], "failed to filter journal log, empty source is not allowed"),
        # Go's regexp wording, as NPD prints it (differential run)
        (["--journald-source=x", "--pattern=["], 'invalid pattern "[": error parsing regexp: m'),
        (["--journald-source=x", "--revert-pattern=(a"], "missing closing ): `(a`"),
        (["--journald-source=x", r"--pattern=\C"], "invalid escape sequence: `\\C`"),
        (["--journald-source=x", "--lookback=20"], 'failed to parse lookback duration "20"'),
        (["--journald-source=x", "--delay=soon"], 'failed to parse delay duration "soon"'),
        (["--journald-source=x", "--count=many"], 'invalid argument "many" for "--count" flag'),
        # pflag's own wording, as NPD's binary prints it
        (["--journald-source=x", "--frobnicate"], "unknown flag: --frobnicate"),
        (["--journald-source=x", "--count"], "flag needs an argument: --count"),
        (["--journald-source=x", "-x"], "unknown shorthand flag: 'x' in -x"),
        (["--journald-source=x", "-v", "loud"], 'invalid argument "loud" for "-v, --v" flag'),
        (["--journald-source=x", "--logtostderr=maybe"], 'for "--logtostderr" flag'),
    ],
)
def test_user_errors_are_one_line_exit_2(run_cli, args, message):
    proc = run_cli(*args, script="log-counter")
    _one_line_error(proc, message)
    assert len(proc.stdout.encode()) <= 81  # NPD's default max_output_length, and a newline


def test_help_lists_every_flag_and_exits_0(run_cli):
    """On stderr, as pflag prints it: NPD's condition message stays empty (differential run)."""
    proc = run_cli("--journald-source=x", "--help", script="log-counter")
    assert (proc.returncode, proc.stdout) == (0, "")
    for flag in ("--journald-source string", "--lookback string", "--count int", "-v, --v int"):
        assert flag in proc.stderr
    assert "(default 1)" in proc.stderr


def test_arguments_that_are_not_flags_are_ignored_as_pflag_does(run_cli, make_journal):
    directory = make_journal([Record(time.time() - 5, "oops", "app")])
    args = ["extra", "--journald-source=app", f"--log-path={directory}", "--lookback=1h"]
    proc = run_cli(*args, "--", "--count=5", script="log-counter")
    assert (proc.returncode, proc.stdout) == (
        1,
        "Found 1 matching logs, which meets the threshold of 1\n",
    )


def test_missing_log_path_is_an_error(run_cli, tmp_path):
    proc = run_cli("--journald-source=x", f"--log-path={tmp_path}/nope", script="log-counter")
    _one_line_error(
        proc,
        f'error watching journald: failed to stat the log path "{tmp_path}/nope": '
        f"stat {tmp_path}/nope: no such file or directory",
    )


def test_corrupt_journal_file_is_an_error(run_cli, tmp_path):
    (tmp_path / "system.journal").write_bytes(os.urandom(8000))
    proc = run_cli("--journald-source=x", f"--log-path={tmp_path}", script="log-counter")
    _one_line_error(proc, "corrupt journal file")
    assert "system.journal" in proc.stdout


def test_identifier_with_no_entries(run_cli, live_journal):
    proc = run_cli(
        "--journald-source=kubelet",
        f"--log-path={live_journal}",
        "--lookback=1h",
        script="log-counter",
    )
    assert (proc.returncode, proc.stdout) == (0, "")


# --------------------------------------------------------------------------------- config/

COUNTER_CONFIGS = (
    "systemd-monitor-counter.json",
    "kernel-monitor-counter.json",
    "docker-monitor-counter.json",
)


def test_config_dir_matches_the_generator(run_cli, tmp_path):
    proc = run_cli(
        "npd-config",
        "log-counter",
        "--output-dir",
        str(tmp_path),
        "--command",
        "/usr/local/bin/healthcheck",
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(COUNTER_CONFIGS)
    for name in COUNTER_CONFIGS:
        with open(os.path.join(REPO, "config", name), encoding="utf-8") as fh:
            committed = fh.read()
        generated = (tmp_path / name).read_text(encoding="utf-8")
        assert committed == generated, f"config/{name} drifted: regenerate it (README)"


def test_shipped_counter_configs_are_npds_with_our_binary():
    from healthcheck._npdconfig import validate_document

    docs = {}
    for name in COUNTER_CONFIGS:
        with open(os.path.join(REPO, "config", name), encoding="utf-8") as fh:
            docs[name] = json.load(fh)
        assert validate_document(docs[name]) == []
        for rule in docs[name]["rules"]:
            assert rule["path"] == "/usr/local/bin/log-counter"
            assert rule["timeout"] == "1m"
    systemd = docs["systemd-monitor-counter.json"]
    assert systemd["pluginConfig"]["invoke_interval"] == "5m"
    assert [r["condition"] for r in systemd["rules"]] == [
        "FrequentKubeletRestart",
        "FrequentDockerRestart",
        "FrequentContainerdRestart",
    ]
    assert systemd["rules"][0]["args"][:5] == [
        "--journald-source=systemd",
        "--log-path=/var/log/journal",
        "--lookback=20m",
        "--delay=5m",
        "--count=5",
    ]
    kernel = docs["kernel-monitor-counter.json"]["rules"][0]["args"]
    assert kernel[-1] == (
        r"--pattern=unregister_netdevice: waiting for \w+ to become free. Usage count = \d+"
    )
    docker = docs["docker-monitor-counter.json"]["rules"][0]["args"]
    assert docker[:4] == [
        "--journald-source=dockerd",
        "--log-path=/var/log/journal",
        "--lookback=5m",
        "--count=10",
    ]


def test_every_shipped_rule_runs_with_our_log_counter(run_cli, make_journal):
    directory = make_journal([Record(time.time() - 5, "nothing to see", "systemd")])
    for name in COUNTER_CONFIGS:
        with open(os.path.join(REPO, "config", name), encoding="utf-8") as fh:
            doc = json.load(fh)
        for rule in doc["rules"]:
            args = [
                f"--log-path={directory}" if a.startswith("--log-path=") else a
                for a in rule["args"]
            ]
            proc = run_cli(*args, script="log-counter")
            assert (proc.returncode, proc.stdout) == (0, ""), (name, rule["reason"], proc.stdout)


def test_a_value_starting_with_a_dash_is_taken_as_pflag_does(run_cli, make_journal):
    directory = make_journal([Record(time.time() - 5, "sh: -bash: fork failed", "sh")])
    args = ["--journald-source", "sh", "--log-path", directory, "--lookback", "1h"]
    proc = run_cli(*args, "--pattern", "-bash: fork failed", script="log-counter")
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == "Found 1 matching logs, which meets the threshold of 1\n"


@pytest.fixture
def world_traversable_dir():
    """A directory under /tmp that an unprivileged user can reach (pytest's tmp_path is 0700)."""
    import tempfile

    path = tempfile.mkdtemp(prefix="healthcheck-test-", dir="/tmp")
    os.chmod(path, 0o755)  # noqa: S103 - the unprivileged user must traverse it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) not installed")
@pytest.mark.parametrize("backend", ["native", "journalctl"])
def test_unreadable_journal_says_permission_denied(world_traversable_dir, backend, bin_path):
    from journalfile import write_journal

    directory = os.path.join(world_traversable_dir, "journal")
    write_journal(directory, [Record(time.time() - 5, "secret", "kubelet")])
    os.chmod(directory, 0o755)  # noqa: S103 - readable directory, unreadable files
    for name in os.listdir(directory):
        os.chmod(os.path.join(directory, name), 0o600)  # root only, like journald's 0640 root:adm
    env = dict(os.environ)
    if backend == "journalctl":
        shadow = os.path.join(world_traversable_dir, "shadow")
        os.makedirs(os.path.join(shadow, "systemd"))
        with open(os.path.join(shadow, "systemd", "__init__.py"), "w") as fh:
            fh.write("raise ImportError('systemd-python hidden by the test')\n")
        for path in (shadow, os.path.join(shadow, "systemd")):
            os.chmod(path, 0o755)  # noqa: S103 - the unprivileged user imports from it
        env["PYTHONPATH"] = shadow
    argv = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        bin_path("log-counter"),
        "--journald-source=kubelet",
        f"--log-path={directory}",
        "--lookback=1h",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    _one_line_error(proc, "permission denied reading journal file")


def test_status_skips_log_counter_without_a_source(run_cli):
    proc = run_cli("status", "--json")
    rows = {row["checker"]: row for row in json.loads(proc.stdout)}
    assert rows["log-counter"]["status"] == "SKIPPED"
    assert "--journald-source" in rows["log-counter"]["message"]


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a private mount namespace")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare (util-linux) not installed")
def test_live_system_journal_while_newer_entries_keep_arriving(bin_path):
    """A real journald in a private mount namespace; log-counter reads the system journal."""
    import sys

    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "live_journald.py")
    proc = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            helper,
            bin_path("log-counter"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["files"], "journald wrote no journal under /run/log/journal"
    # Quiet journal: 3 Started - 1 Stopping; the "other" identifier's line is not counted.
    assert result["quiet"] == [1, "Found 2 matching logs, which meets the threshold of 1\n", ""]
    # With a writer: its entries up to the moment counting started count too, later ones do not,
    # and counting ends although the journal never falls silent.
    assert result["returncode"] == 1, result
    found = int(result["stdout"].split()[1])
    assert found > 2
    assert result["elapsed"] < 10, "counting must stop at the first entry newer than its start"


def test_validate_does_no_io_so_a_config_may_name_a_journal_to_come(tmp_path):
    """The agent validates options at load time; NPD checks the log path when it runs."""
    from healthcheck import _host as host

    checker = host.find("log-counter").checker
    options = checker.defaults()
    options.journald_source = "systemd"
    options.log_path = str(tmp_path / "not-yet")
    checker.validate(options)  # no error: the path is the run's business
