"""Files written as root never follow a link, never block, never leave half a line (issue 11,
invariant 4): state files and their locks, the host_event.log writer and ``npd-config``.

Each test plants what a local attacker (or an accident) can put in a shared directory: a symbolic
link at the predictable name of a file root writes, a FIFO where a file is expected, a full disk
(a real tmpfs mounted by the test), and a metadata server reporting thousands of events.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from healthcheck.sdk.state import StateError, locked_state, read_state, write_state
from healthcheck_plugins.maintenance_events.metadata import hostlog
from healthcheck_plugins.maintenance_events.metadata.events import Event
from healthcheck_plugins.maintenance_events.metadata.hostlog import HostLogError, write_new_events

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator

LINE = re.compile(
    r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - WARNING - Ecs event type is: [^,\n]+,"
    r"event status is: [^,\n]+,action ISO 8601 time is \S*\n\Z"
)
PLANTED = b"precious file of someone else\n"


def _event(n: int, status: str = "Scheduled") -> dict:
    return {
        "event-id": f"e-{n}",
        "event-type": "SystemMaintenance.Reboot",
        "event-status": status,
        "not-before": "2026-11-23T02:00:00Z",
    }


def _victim(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(PLANTED)
    return victim


# ------------------------------------------------------------------------- state files, locks


def test_state_write_never_follows_a_link_at_a_predictable_temporary_name(tmp_path):
    """Today's temp name was ``.NAME.PID.tmp``: a link planted there made root write its target."""
    victim = _victim(tmp_path)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    for pid in (os.getpid(), os.getppid()):
        os.symlink(victim, state_dir / f".s.json.{pid}.tmp")
    write_state(str(state_dir / "s.json"), {"a": 1})
    assert victim.read_bytes() == PLANTED
    assert read_state(str(state_dir / "s.json")) == {"a": 1}
    leftovers = [p for p in os.listdir(state_dir) if p.endswith(".tmp")]
    assert sorted(leftovers) == sorted(f".s.json.{pid}.tmp" for pid in (os.getpid(), os.getppid()))


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' * 50_000, "\x00\xff", "1e999999"])
def test_a_state_file_we_did_not_write_reads_as_empty(tmp_path, text):
    """Corrupt, deeply nested (json raised RecursionError through every caller) or binary."""
    path = tmp_path / "s.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    assert read_state(str(path)) == {}
    with locked_state(str(path)) as state:
        state["n"] = 1
    assert read_state(str(path)) == {"n": 1}


def test_a_link_at_the_state_files_name_is_replaced_not_followed(tmp_path):
    victim = _victim(tmp_path)
    path = tmp_path / "s.json"
    os.symlink(victim, path)
    write_state(str(path), {"a": 1})
    assert victim.read_bytes() == PLANTED
    assert not path.is_symlink() and read_state(str(path)) == {"a": 1}


def test_a_link_at_the_lock_files_name_is_an_error_and_creates_nothing(tmp_path):
    target = tmp_path / "created-by-root"
    os.symlink(target, tmp_path / "s.json.lock")
    with (
        pytest.raises(StateError, match=r"s\.json\.lock: a symbolic link"),
        locked_state(str(tmp_path / "s.json")),
    ):
        pass
    assert not target.exists()


@pytest.mark.parametrize("name", ["s.json", "s.json.lock"])
def test_a_fifo_at_a_state_or_lock_file_is_an_error_not_a_hang(tmp_path, name):
    os.mkfifo(tmp_path / name)
    code = (
        "import sys\n"
        "from healthcheck.sdk.state import StateError, locked_state\n"
        "try:\n"
        "    with locked_state(sys.argv[1]) as s:\n"
        "        s['n'] = 1\n"
        "except StateError as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "s.json")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "not a regular file (a FIFO)" in proc.stdout and proc.stdout.count("\n") == 1


# ---------------------------------------------------------------------------- host_event.log


@pytest.fixture
def host_event_log(run_cli, tmp_path):
    """``healthcheck host-event-log`` against an emulator, state and log under ``tmp_path``."""

    def run(emu, log=None, state=None):
        return run_cli(
            "host-event-log",
            "--provider",
            emu.provider,
            "--endpoint",
            emu.url,
            "--state-dir",
            str(state or tmp_path / "state"),
            "--log-path",
            str(log or tmp_path / "host_event.log"),
            timeout=30,
        )

    return run


def test_a_link_at_the_log_path_is_refused(host_event_log, tmp_path):
    victim = _victim(tmp_path)
    log = tmp_path / "host_event.log"
    os.symlink(victim, log)
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        proc = host_event_log(emu)
    assert proc.returncode == 2
    assert victim.read_bytes() == PLANTED
    assert proc.stderr == (
        f"healthcheck host-event-log: cannot open {log}: a symbolic link, not a regular file\n"
    )


def test_a_hard_link_at_the_log_path_is_refused(host_event_log, tmp_path):
    """O_NOFOLLOW does not see a hard link: before, root appended to the link's other name."""
    victim = _victim(tmp_path)
    log = tmp_path / "host_event.log"
    os.link(victim, log)
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        proc = host_event_log(emu)
    assert proc.returncode == 2
    assert victim.read_bytes() == PLANTED
    assert proc.stderr == (
        f"healthcheck host-event-log: cannot open {log}: a file with 2 hard links, not one\n"
    )


@pytest.mark.parametrize(
    "fifo", ["host_event.log", "state/host-event-log.json", "state/host-event-log.json.lock"]
)
def test_a_fifo_anywhere_it_writes_ends_with_one_line_and_exit_2(host_event_log, tmp_path, fifo):
    """Today a FIFO at the log path hangs the command forever while it holds the state lock."""
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / fifo)
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        proc = host_event_log(emu)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "not a regular file" in proc.stderr


def test_a_fifo_at_the_token_cache_is_unknown_not_a_hang(host_event_log, tmp_path):
    (tmp_path / "state").mkdir()
    os.mkfifo(tmp_path / "state" / "metadata-token.json")
    with MetadataEmulator("alibaba", [_event(1)]) as emu:
        proc = host_event_log(emu)
    assert proc.returncode == 2
    assert "metadata-token.json: not a regular file (a FIFO)" in proc.stderr


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 8 KiB tmpfs (two pages), to fill the disk under the log for real."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"f" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_a_full_disk_leaves_no_fragment_to_merge_with_the_next_line(tiny_tmpfs, tmp_path):
    log = tiny_tmpfs / "host_event.log"
    old = "old line\n" * 444  # 3996 bytes: the next line fills the page, then the disk is full
    log.write_text(old)
    _fill(tiny_tmpfs / "filler")
    state = str(tmp_path / "state")
    events = [Event(f"e-{n}", "SystemMaintenance.Reboot", "Scheduled", "") for n in range(3)]
    with pytest.raises(HostLogError, match=r"cannot write .*short write"):
        write_new_events(events, str(log), state)
    assert log.read_text() == old  # the part that fitted was taken back
    os.unlink(tiny_tmpfs / "filler")
    assert write_new_events(events, str(log), state) == 3  # nothing was recorded as written
    new = log.read_text()[len(old) :].splitlines(keepends=True)
    assert len(new) == 3 and all(LINE.match(line) for line in new), new


def test_dedup_covers_every_reported_event_even_thousands(host_event_log, tmp_path):
    """Today the record kept 2,000 (id, status) pairs: with 2,500 events every run wrote again."""
    events = [_event(n) for n in range(2500)]
    log = tmp_path / "host_event.log"
    with MetadataEmulator("alibaba", events) as emu:
        outputs = [host_event_log(emu).stdout.split()[0] for _ in range(3)]
    assert outputs == ["2500", "0", "0"]
    assert len(log.read_text().splitlines()) == 2500


def test_dedup_record_is_bounded_and_remembers_recently_gone_events(tmp_path):
    state, log = str(tmp_path / "state"), str(tmp_path / "host_event.log")

    def batch(first, count):
        return [Event(f"e-{n}", "T", "Scheduled", "") for n in range(first, first + count)]

    assert write_new_events(batch(0, 3000), log, state) == 3000
    assert write_new_events(batch(3000, 3000), log, state) == 3000  # the first 3000 are gone
    record = read_state(os.path.join(state, "host-event-log.json"))[os.path.abspath(log)]
    assert len(record) == 16 * (hostlog.MAX_GONE + 3000)
    assert write_new_events(batch(2990, 20), log, state) == 0  # recently gone: not written twice
    assert write_new_events(batch(0, 1), log, state) == 1  # gone long ago: forgotten, once more
    with open(log) as fh:
        assert len(fh.readlines()) == 6001


def test_old_record_format_is_read(tmp_path):
    """Before this change the record was a list of "id<TAB>status" strings."""
    state_dir, log = tmp_path / "state", str(tmp_path / "host_event.log")
    event = Event("e-1", "SystemMaintenance.Reboot", "Scheduled", "")
    with locked_state(str(state_dir / "host-event-log.json")) as state:
        state[os.path.abspath(log)] = [event.key()]
    assert write_new_events([event], log, str(state_dir)) == 0


def test_metadata_fields_cannot_forge_or_split_a_log_line(tmp_path):
    """A type holding a newline or the line's own separators stays one line, in its field."""
    event = Event(
        "e-1",
        "Other,event status is: Scheduled\n2024-01-01 00:00:00 - WARNING - Ecs event type is: X",
        "Executed" + "𝄞" * 5000,  # four bytes each: the bound is in bytes, not characters
        "2026-11-23T02:00:00Z",
    )
    log = tmp_path / "host_event.log"
    assert write_new_events([event], str(log), str(tmp_path / "state")) == 1
    (line,) = log.read_text().splitlines(keepends=True)
    assert LINE.match(line) and len(line.encode()) < 400
    assert line.count(",event status is:") == 1  # the separator NPD's rules match on


# -------------------------------------------------------------------------------- npd-config


def test_npd_config_replaces_a_planted_link_instead_of_writing_through_it(run_cli, tmp_path):
    victim = _victim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "healthcheck-conntrack.json")
    proc = run_cli("npd-config", "conntrack", "--output-dir", str(out))
    assert proc.returncode == 0, proc.stderr
    assert victim.read_bytes() == PLANTED
    written = out / "healthcheck-conntrack.json"
    assert not written.is_symlink() and written.read_text().startswith("{")
    assert [p.name for p in out.iterdir()] == ["healthcheck-conntrack.json"]  # no temp left


def test_npd_config_never_shows_a_half_written_file(run_cli, tmp_path):
    """A reader polling the file while it is rewritten sees the old or the new text, whole."""
    out = tmp_path / "out"
    assert run_cli("npd-config", "conntrack", "--output-dir", str(out)).returncode == 0
    path = out / "healthcheck-conntrack.json"
    whole = path.read_text()
    inode = os.stat(path).st_ino
    assert run_cli("npd-config", "conntrack", "--output-dir", str(out)).returncode == 0
    assert path.read_text() == whole
    assert os.stat(path).st_ino != inode  # replaced by rename, not truncated and rewritten
