"""The host_event.log writer: exact line format, de-duplication across runs, a concurrent second
writer, a rotated file; via ``healthcheck host-event-log`` and the checker's flag, against the
loopback metadata emulator."""

from __future__ import annotations

import calendar
import os
import re
import subprocess
import sys
import time

import pytest

from healthcheck_plugins.maintenance_events.metadata.events import Event
from healthcheck_plugins.maintenance_events.metadata.hostlog import format_line, write_new_events

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator

SPEC_EXAMPLE = (
    "2024-01-08 17:02:01 - WARNING - Ecs event type is: InstanceFailure.Reboot,"
    "event status is: Executed,action ISO 8601 time is 2023-12-27T11:49:28Z\n"
)
# The pattern of the NPD rules in config/host_event.json (spec: cloud-events.md).
NPD_PATTERN = (
    "Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled.*|"
    "Ecs event type is: SystemMaintenance.Reboot,event status is: Inquiring.*"
)
LINE = re.compile(
    r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - WARNING - Ecs event type is: [^,\n]+,"
    r"event status is: [^,\n]+,action ISO 8601 time is \S*\n\Z"
)


def _event(n: int, status: str = "Scheduled", kind: str = "SystemMaintenance.Reboot") -> dict:
    return {
        "event-id": f"e-{n}",
        "event-type": kind,
        "event-status": status,
        "not-before": f"2026-11-2{n % 10}T02:00:00Z",
    }


@pytest.fixture
def writer(run_cli, tmp_path):
    """Run ``healthcheck host-event-log`` against an emulator; returns (process, log path)."""
    log = tmp_path / "host_event.log"

    def run(emu, *extra, env=None):
        proc = run_cli(
            "host-event-log",
            "--provider",
            emu.provider,
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            "--log-path",
            str(log),
            *extra,
            env=env,
        )
        return proc

    run.log = log
    return run


def _lines(path) -> list[str]:
    return path.read_text().splitlines(keepends=True) if path.exists() else []


def test_line_format_is_the_plugins_exactly():
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        now = calendar.timegm((2024, 1, 8, 17, 2, 1, 0, 0, 0))
        event = Event("e-1", "InstanceFailure.Reboot", "Executed", "2023-12-27T11:49:28Z")
        assert format_line(event, now) == SPEC_EXAMPLE
    finally:
        if old_tz is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old_tz
        time.tzset()


def test_written_lines_match_the_npd_rules(writer):
    events = [_event(1, "Scheduled"), _event(2, "Inquiring"), _event(3, "Executed")]
    events.append(_event(4, "Scheduled", "SystemMaintenance.Redeploy"))
    with MetadataEmulator("alibaba", events) as emu:
        proc = writer(emu)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"4 new event line(s) in {writer.log}"
    lines = _lines(writer.log)
    assert len(lines) == 4
    assert all(LINE.match(line) for line in lines)
    # NPD's filelog: timestamp "^.{19}", message "Ecs event type is: .*", then the rule pattern
    messages = [re.search("Ecs event type is: .*", line[19:]).group(0) for line in lines]
    matched = [m for m in messages if re.match(NPD_PATTERN, m)]
    assert matched == [
        "Ecs event type is: SystemMaintenance.Reboot,event status is: Scheduled,"
        "action ISO 8601 time is 2026-11-21T02:00:00Z",
        "Ecs event type is: SystemMaintenance.Reboot,event status is: Inquiring,"
        "action ISO 8601 time is 2026-11-22T02:00:00Z",
    ]
    stamp = time.strptime(lines[0][:19], "%Y-%m-%d %H:%M:%S")
    assert abs(time.mktime(stamp) - time.time()) < 60


def test_timestamp_is_local_time_as_the_plugin_writes_it(writer):
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        before = time.time()
        proc = writer(emu, env={"TZ": "XST-8"})  # POSIX TZ: eight hours east of UTC
    assert proc.returncode == 0, proc.stderr
    (line,) = _lines(writer.log)
    stamp = calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
    assert abs(stamp - 8 * 3600 - before) < 60


def test_each_id_and_status_is_written_once_across_runs(writer):
    events = [_event(1), _event(2)]
    with MetadataEmulator("alibaba", events) as emu:
        assert writer(emu).stdout.startswith("2 new")
        assert writer(emu).stdout.startswith("0 new")
        events[0]["event-status"] = "Executing"  # same id, new status: a new line
        assert writer(emu).stdout.startswith("1 new")
        events[0]["event-status"] = "Executed"
        events.append(_event(3))
        assert writer(emu).stdout.startswith("2 new")
        assert writer(emu).stdout.startswith("0 new")
    statuses = [re.search(r"status is: (\w+)", line).group(1) for line in _lines(writer.log)]
    assert statuses == ["Scheduled", "Scheduled", "Executing", "Executed", "Scheduled"]


def test_concurrent_writers_write_every_line_once(writer, bin_path, tmp_path):
    events = [_event(n) for n in range(6)]
    with MetadataEmulator("alibaba", events) as emu:
        emu.require_token = True
        argv = [
            bin_path("healthcheck"),
            "host-event-log",
            "--provider",
            "alibaba",
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            "--log-path",
            str(writer.log),
        ]
        procs = [
            subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(8)
        ]
        outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    written = sorted(int(out.split()[0]) for out, _ in outs)
    assert written == [0] * 7 + [6]
    lines = _lines(writer.log)
    assert len(lines) == 6 and all(LINE.match(line) for line in lines)


def test_a_second_writer_waits_for_the_lock_then_finds_nothing_new(tmp_path):
    from healthcheck.sdk.state import locked_state

    state_dir = str(tmp_path / "state")
    log = str(tmp_path / "host_event.log")
    event = Event("e-1", "SystemMaintenance.Reboot", "Scheduled", "2026-11-23T02:00:00Z")
    with locked_state(os.path.join(state_dir, "host-event-log.json")) as state:
        # another writer holds the lock and has just recorded this event
        state[os.path.abspath(log)] = [event.key()]
        with open(log, "a") as fh:
            fh.write(format_line(event))
    assert write_new_events([event], log, state_dir) == 0
    assert len(_lines(tmp_path / "host_event.log")) == 1


def test_rotated_log_is_started_afresh_without_repeating_old_lines(writer):
    events = [_event(1)]
    with MetadataEmulator("alibaba", events) as emu:
        assert writer(emu).stdout.startswith("1 new")
        first = writer.log.read_text()
        rotated = writer.log.with_name("host_event.log.1")
        os.rename(writer.log, rotated)  # logrotate's default: rename, the writer recreates
        events.append(_event(2))
        assert writer(emu).stdout.startswith("1 new")
        assert rotated.read_text() == first  # nothing appended to the rotated file
        assert [line.split("time is ")[1] for line in _lines(writer.log)] == [
            "2026-11-22T02:00:00Z\n"
        ]
        os.truncate(writer.log, 0)  # copytruncate: O_APPEND writes land at the new end
        events.append(_event(3))
        assert writer(emu).stdout.startswith("1 new")
    (line,) = _lines(writer.log)
    assert line.endswith("time is 2026-11-23T02:00:00Z\n")
    assert LINE.match(line)


def test_unreadable_endpoint_writes_nothing_and_exits_2(writer, run_cli, tmp_path):
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        emu.fault = "500"
        proc = writer(emu)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "healthcheck host-event-log: cannot read alibaba events: HTTP 500 from the metadata server"
    )
    assert not writer.log.exists()


def test_unwritable_log_is_one_line_exit_2(run_cli, tmp_path):
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        proc = run_cli(
            "host-event-log",
            "--provider",
            "alibaba",
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            "--log-path",
            str(tmp_path / "missing" / "host_event.log"),
        )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "cannot open" in proc.stderr and "No such file or directory" in proc.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--provider", "vmware"], "invalid choice: 'vmware'"),
        (["--endpoint", "ftp://x"], "use http://"),
        (["--token-ttl", "0"], "between 1 and 21600"),
        (["--timeout", "5 minutes"], "5 minutes"),
    ],
)
def test_subcommand_bad_flags(run_cli, args, words):
    proc = run_cli("host-event-log", *args)
    assert proc.returncode == 2
    assert words in proc.stderr and proc.stderr.count("\n") == 1


def test_checker_flag_writes_the_log_and_reports_write_failures(run_cli, tmp_path):
    log = tmp_path / "host_event.log"

    def check(emu, log_path):
        return run_cli(
            "check",
            "maintenance-events",
            "--provider",
            "alibaba",
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            "--write-host-event-log",
            str(log_path),
        )

    events = [_event(1, "Executed")]
    with MetadataEmulator("alibaba", events) as emu:
        assert check(emu, log).returncode == 0
        assert len(_lines(log)) == 1
        bad = tmp_path / "missing" / "host_event.log"
        proc = check(emu, bad)
        assert proc.returncode == 2  # OK would hide that the log is not being kept
        assert proc.stdout.startswith("cannot open")
        events[0]["event-status"] = "Scheduled"
        proc = check(emu, bad)
        assert proc.returncode == 1  # a pending event outranks the log failure
        assert check(emu, log).returncode == 1
    assert len(_lines(log)) == 2
