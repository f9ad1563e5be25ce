"""healthcheck.sdk.journal against real journal files written by systemd-journal-remote.

Every behaviour is checked through both backends (libsystemd via systemd-python, and journalctl's
JSON output), which must agree entry for entry.
"""

from __future__ import annotations

import os
import shutil
import time

import psutil
import pytest
from journalfile import Record, write_journal

from healthcheck.sdk import _journalctl
from healthcheck.sdk.journal import JournalError, read_entries

BACKENDS = ["native", "journalctl"]
T0 = 1_700_000_000.0


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def mixed_journal(make_journal):
    """Three identifiers, units, a multi-line and a non-UTF-8 message, one entry per second."""
    records = [
        Record(T0 + 0, "kubelet started", "kubelet", unit="kubelet.service"),
        Record(T0 + 1, "docker up", "dockerd", unit="docker.service"),
        Record(T0 + 2, "line one\nline two", "kubelet", unit="kubelet.service"),
        Record(T0 + 3, b"bad \xff byte", "kernel"),
        Record(T0 + 4, "unit only", "systemd", fields={"UNIT": "kubelet.service"}),
        Record(T0 + 5, "kubelet stopping", "kubelet", unit="kubelet.service"),
    ]
    return make_journal(records, name="test.journal")


def _read(directory, backend, **kwargs):
    return [
        (e.realtime, e.message, e.fields)
        for e in read_entries(directory=directory, backend=backend, **kwargs)
    ]


def test_reads_everything_in_order_with_exact_timestamps(mixed_journal, backend):
    entries = _read(mixed_journal, backend)
    assert [t for t, _, _ in entries] == [T0 + i for i in range(6)]
    assert entries[2][1] == "line one\nline two"
    assert entries[3][1] == "bad \ufffd byte"


def test_identifier_match_is_applied(mixed_journal, backend):
    entries = _read(mixed_journal, backend, matches=[{"SYSLOG_IDENTIFIER": "kubelet"}])
    assert [m for _, m, _ in entries] == [
        "kubelet started",
        "line one\nline two",
        "kubelet stopping",
    ]


def test_or_of_groups_and_and_within_a_group(mixed_journal, backend):
    either = _read(
        mixed_journal,
        backend,
        matches=[{"_SYSTEMD_UNIT": "docker.service"}, {"UNIT": "kubelet.service"}],
    )
    assert [m for _, m, _ in either] == ["docker up", "unit only"]
    both = _read(
        mixed_journal,
        backend,
        matches=[{"SYSLOG_IDENTIFIER": "kubelet", "_SYSTEMD_UNIT": "docker.service"}],
    )
    assert both == []


def test_since_is_inclusive_and_until_stops_at_the_first_newer_entry(mixed_journal, backend):
    entries = _read(mixed_journal, backend, since=T0 + 2, until=T0 + 4)
    assert [t for t, _, _ in entries] == [T0 + 2, T0 + 3, T0 + 4]
    assert _read(mixed_journal, backend, since=T0 + 2.5, until=T0 + 2.9) == []


def test_requested_fields_are_filled_and_missing_ones_absent(mixed_journal, backend):
    entries = _read(mixed_journal, backend, fields=["SYSLOG_IDENTIFIER", "_SYSTEMD_UNIT"])
    assert entries[0][2] == {"SYSLOG_IDENTIFIER": "kubelet", "_SYSTEMD_UNIT": "kubelet.service"}
    assert entries[3][2] == {"SYSLOG_IDENTIFIER": "kernel"}


def test_both_backends_agree(mixed_journal):
    kwargs = {"since": T0 + 1, "fields": ["SYSLOG_IDENTIFIER", "UNIT"]}
    assert _read(mixed_journal, "native", **kwargs) == _read(mixed_journal, "journalctl", **kwargs)


def test_journal_in_a_machine_id_subdirectory_is_found(tmp_path, backend):
    machine = tmp_path / "journal" / ("ab" * 16)
    write_journal(machine, [Record(T0, "nested", "kubelet")], name="system.journal")
    assert [m for _, m, _ in _read(str(tmp_path / "journal"), backend)] == ["nested"]


def test_missing_directory_is_a_journal_error(tmp_path, backend):
    with pytest.raises(JournalError, match=r"journal directory .*nope does not exist"):
        read_entries(directory=str(tmp_path / "nope"), backend=backend)


def test_a_file_instead_of_a_directory_is_a_journal_error(tmp_path, backend):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(JournalError, match="is not a directory"):
        read_entries(directory=str(path), backend=backend)


def test_empty_directory_is_an_empty_journal_not_the_system_one(tmp_path, backend):
    (tmp_path / "empty").mkdir()
    assert _read(str(tmp_path / "empty"), backend) == []


def _corrupt(path):
    with open(path, "wb") as fh:
        fh.write(os.urandom(4096))


def test_only_corrupt_files_is_a_journal_error(tmp_path, backend):
    directory = tmp_path / "journal"
    directory.mkdir()
    _corrupt(directory / "system.journal")
    with pytest.raises(JournalError, match=r"corrupt journal file .*system\.journal"):
        list(read_entries(directory=str(directory), backend=backend))


def test_truncated_file_is_a_journal_error(mixed_journal, backend):
    path = os.path.join(mixed_journal, "test.journal")
    with open(path, "r+b") as fh:
        fh.truncate(100_000)
    with pytest.raises(JournalError, match="corrupt journal file"):
        list(read_entries(directory=mixed_journal, backend=backend))


def test_a_corrupt_file_beside_good_ones_is_skipped_with_a_warning(mixed_journal, backend):
    _corrupt(os.path.join(mixed_journal, "broken.journal"))
    warnings = []
    entries = list(read_entries(directory=mixed_journal, backend=backend, warn=warnings.append))
    assert len(entries) == 6
    assert len(warnings) == 1
    assert "broken.journal" in warnings[0]


def test_bad_arguments_are_journal_errors(mixed_journal):
    with pytest.raises(JournalError, match="unknown journal backend"):
        read_entries(directory=mixed_journal, backend="kafka")
    with pytest.raises(JournalError, match="invalid journal field name"):
        read_entries(directory=mixed_journal, matches=[{"syslog id": "x"}])
    with pytest.raises(JournalError, match="invalid journal field name"):
        read_entries(directory=mixed_journal, matches=[{"": "x"}])


def test_missing_journalctl_binary_is_a_journal_error(mixed_journal, tmp_path):
    with pytest.raises(JournalError, match=r"cannot start .*no-journalctl"):
        read_entries(
            directory=mixed_journal,
            backend="journalctl",
            journalctl=str(tmp_path / "no-journalctl"),
        )


def test_journalctl_oversized_entry_is_skipped(tmp_path, monkeypatch):
    directory = tmp_path / "journal"
    write_journal(
        directory,
        [
            Record(T0, "x" * 5000, "kubelet"),
            Record(T0 + 1, "small", "kubelet"),
        ],
    )
    monkeypatch.setattr(_journalctl, "MAX_LINE_BYTES", 1024)
    assert [m for _, m, _ in _read(str(directory), "journalctl")] == ["small"]


def test_journalctl_is_killed_and_reaped_when_the_reader_stops_early(tmp_path):
    directory = tmp_path / "journal"
    write_journal(directory, (Record(T0 + i, f"entry {i}", "kubelet") for i in range(20_000)))
    entries = read_entries(directory=str(directory), backend="journalctl")
    first = next(entries)
    assert first.message == "entry 0"
    me = psutil.Process()
    children = [p for p in me.children(recursive=True) if "journalctl" in p.name()]
    assert children, "journalctl should be running while the reader is open"
    started = time.monotonic()
    entries.close()
    assert time.monotonic() - started < 5
    # killed and reaped: not running, and not left behind as a zombie
    assert not any(psutil.pid_exists(child.pid) for child in children)


@pytest.mark.skipif(shutil.which("journalctl") is None, reason="journalctl not installed")
def test_journalctl_backend_reports_a_failing_journalctl(tmp_path, mixed_journal):
    fake = tmp_path / "journalctl"
    # A journalctl that can open files but fails while reading: the error must surface.
    fake.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do [ "$a" = "--lines=0" ] && exit 0; done\n'
        "echo 'Failed to iterate through journal: Bad message' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    with pytest.raises(JournalError, match="journalctl failed: Failed to iterate"):
        list(read_entries(directory=mixed_journal, backend="journalctl", journalctl=str(fake)))


def test_an_empty_window_reads_nothing(mixed_journal, backend):
    assert _read(mixed_journal, backend, since=T0 + 4, until=T0 + 1) == []
