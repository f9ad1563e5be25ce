"""Fuzzing the metadata reply parsers end to end (issue 11): whatever a metadata server answers,
``healthcheck check maintenance-events`` exits 0, 1 or 2 with one line of at most 80 bytes on
stdout and no traceback, ``healthcheck host-event-log`` writes only whole, well-formed lines, and
both end in bounded time and memory.

The replies come from the loopback metadata emulator (a real HTTP server) serving each example
verbatim; the front doors run in-process through ``healthcheck._cli.main`` so that hypothesis can
try hundreds of replies per provider, and a few worst cases run as real processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcheck import _cli as cli
from healthcheck_plugins.maintenance_events.metadata import alibaba, aws, azure, gcp

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator

GNU_TIME = "/usr/bin/time"
PROVIDERS = {"alibaba": alibaba, "aws": aws, "azure": azure, "gcp": gcp}
LINE = re.compile(
    r"\A\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - WARNING - Ecs event type is: ([^,\n]*),"
    r"event status is: ([^,\n]*),action ISO 8601 time is ([^\n]*)\n\Z"
)
FIELD_BYTES = 120  # each metadata field in a host_event.log line
FIELDS = {
    "alibaba": (
        ["event-id", "eventId", "EventId"],
        ["event-type", "eventType", "EventType"],
        ["event-status", "eventStatus", "EventCycleStatus"],
        ["not-before", "notBefore", "NotBefore"],
    ),
    "aws": (["EventId"], ["Code"], ["State"], ["NotBefore"]),
    "azure": (["EventId"], ["EventType"], ["EventStatus"], ["NotBefore"]),
}
# Text a hostile or broken server may put in a field: control characters, line and paragraph
# separators, lone surrogates (JSON can carry them), wide characters, and sheer length.
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from("\n\r\t\x00\x1b\x7f\u2028\u2029\ud800é€𝄞,: "), max_size=40),
    st.integers(min_value=1, max_value=20000).map(lambda n: "x" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: "€\n" * n),
    st.integers(min_value=1, max_value=3000).map(lambda n: "𝄞" * n),
)


def _field_value(provider: str, kind: int):
    """A value for field ``kind`` (0 id, 1 type, 2 status, 3 time): plausible or hostile."""
    module = PROVIDERS[provider]
    plausible = [
        st.sampled_from([f"e-{n}" for n in range(5)]),
        st.sampled_from(module.DISRUPTIVE_TYPES),
        st.sampled_from((*module.DISRUPTIVE_STATUSES, "Executed", "completed", "Canceled")),
        st.sampled_from(["2026-11-23T02:00:00Z", "21 Jan 2019 09:00:43 GMT", "", "soon"]),
    ][kind]
    return st.one_of(
        plausible,
        plausible.flatmap(lambda v: hostile_text.map(lambda t, v=v: v + t)),
        hostile_text,
        st.integers(min_value=-(10**30), max_value=10**30),
        st.none(),
        st.builds(lambda c, n: {"Code": c, "Name": n}, st.integers(0, 99), hostile_text),
        st.lists(st.none(), max_size=2),
    )


def _event(provider: str):
    """An event object: usually with an id, type, status and time under the first spelling (so
    the hostile text reaches messages and log lines), sometimes any subset of every spelling."""
    names = FIELDS[provider]
    complete = st.fixed_dictionaries(
        {group[0]: _field_value(provider, kind) for kind, group in enumerate(names)}
    )
    anything = st.fixed_dictionaries(
        {},
        optional={
            name: _field_value(provider, kind) for kind, group in enumerate(names) for name in group
        },
    )
    return st.one_of(complete, anything)


def _json_reply(provider: str):
    events = st.lists(_event(provider), max_size=6)
    if provider == "azure":
        shaped = events.map(lambda e: {"DocumentIncarnation": 1, "Events": e})
    elif provider == "alibaba":
        shaped = st.one_of(
            events,
            events.map(lambda e: {"active-system-events": e}),
            events.map(lambda e: {"InstanceSystemEventSet": {"InstanceSystemEventType": e}}),
        )
    else:
        shaped = events
    return shaped.map(lambda v: json.dumps(v).encode())


def _reply(provider: str):
    """``(status, content type, body)`` the emulator serves as the events reply."""
    if provider == "gcp":
        body = st.one_of(
            st.sampled_from(
                [b"NONE", b"MIGRATE_ON_HOST_MAINTENANCE", b"TERMINATE_ON_HOST_MAINTENANCE"]
            ),
            st.binary(max_size=200),
            hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        )
    else:
        body = st.one_of(
            _json_reply(provider),
            _json_reply(provider),
            st.binary(max_size=300),
            st.sampled_from([b"", b"[]", b"{}", b"null", b"[" * 5000, b'{"Events": 1}']),
        )
    ctype = st.sampled_from(
        ["", "application/json", "text/plain", "text/html", "application/text", "x\x01y" * 30]
    )
    status = st.sampled_from([200, 200, 200, 200, 204, 301, 404, 500, 999])
    return st.tuples(status, ctype, body)


@pytest.fixture(scope="module")
def emulators():
    started = {p: MetadataEmulator(p).__enter__() for p in PROVIDERS}
    yield started
    for emu in started.values():
        emu.__exit__(None, None, None)


FUZZ_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


def _argv(command: list[str], emu, tmp_path, *extra: str) -> list[str]:
    """``command`` against ``emu`` with its state under ``tmp_path`` and a 3 s deadline."""
    return [
        *command,
        "--provider",
        emu.provider,
        "--endpoint",
        emu.url,
        "--state-dir",
        str(tmp_path / "state"),
        "--timeout",
        "3s",
        *extra,
    ]


def _run(argv: list[str]) -> tuple[int, str, str, float, int]:
    """``cli.main(argv)`` in-process: exit code, stdout, stderr, seconds, peak traced bytes."""
    out, err = io.StringIO(), io.StringIO()
    tracemalloc.start()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    finally:
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return code, out.getvalue(), err.getvalue(), elapsed, peak


def _assert_protocol_line(code: int, out: str, err: str) -> None:
    assert code in (0, 1, 2), (code, out, err)
    assert out.endswith("\n") and out.count("\n") == 1, out
    assert len(out[:-1].encode("utf-8")) <= 80, out
    assert out[:-1].isprintable(), out
    assert "Traceback" not in out + err


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=120, **FUZZ_SETTINGS)
@given(data=st.data())
def test_check_answers_any_reply_with_one_protocol_line(emulators, tmp_path, provider, data):
    emu = emulators[provider]
    emu.raw = data.draw(_reply(provider))
    code, out, err, elapsed, peak = _run(_argv(["check", "maintenance-events"], emu, tmp_path))
    _assert_protocol_line(code, out, err)
    if code == 0:
        assert emu.raw[0] == 200  # "no events" only from a real reply, never from a failure
    assert elapsed < 30  # bounded: the deadline is 3 s; this only catches a runaway
    assert peak < 16 * 1024 * 1024, peak


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@settings(max_examples=60, **FUZZ_SETTINGS)
@given(data=st.data())
def test_host_event_log_writes_only_whole_wellformed_lines(emulators, tmp_path, provider, data):
    emu = emulators[provider]
    emu.raw = data.draw(_reply(provider))
    log = tmp_path / "host_event.log"
    before = log.read_bytes() if log.exists() else b""
    argv = _argv(["host-event-log"], emu, tmp_path, "--log-path", str(log))
    code, out, err, elapsed, peak = _run(argv)
    assert code in (0, 2), (code, out, err)
    assert (out + err).count("\n") == 1 and "Traceback" not in out + err
    after = log.read_bytes() if log.exists() else b""
    assert after.startswith(before)
    for line in after[len(before) :].decode("utf-8").splitlines(keepends=True):
        match = LINE.match(line)
        assert match, line
        assert all(len(field.encode()) <= FIELD_BYTES for field in match.groups()), line
    assert elapsed < 30
    assert peak < 16 * 1024 * 1024, peak


# ------------------------------------------------------------------- worst cases, real processes


def _largest_reply(provider: str) -> bytes:
    """Just under the 1 MiB body limit, as many events as fit: the most work one reply can ask."""
    if provider == "gcp":
        return b"MIGRATE_ON_HOST_MAINTENANCE"
    id_, kind, status, _ = (names[0] for names in FIELDS[provider])
    one = {id_: "", kind: "system-reboot", status: "active"}
    size = len(json.dumps(one)) + 8
    events = [dict(one, **{id_: f"{n:06d}"}) for n in range((1 << 20) // size - 10)]
    if provider == "azure":
        return json.dumps({"Events": events}).encode()
    return json.dumps(events).encode()


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@pytest.mark.parametrize("command", ["check", "host-event-log"])
@pytest.mark.skipif(not os.path.exists(GNU_TIME), reason="needs GNU time for a peak RSS")
def test_the_largest_reply_is_bounded_in_a_real_process(bin_path, tmp_path, provider, command):
    body = _largest_reply(provider)
    assert len(body) < 1 << 20
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with MetadataEmulator(provider) as emu:
        emu.raw = (200, "", body)
        argv = [bin_path("healthcheck")]
        if command == "check":
            argv += ["check", "maintenance-events"]
        else:
            argv += ["host-event-log", "--log-path", str(tmp_path / "host_event.log")]
        argv += ["--provider", provider, "--endpoint", emu.url]
        argv += ["--state-dir", str(tmp_path / "state"), "--timeout", "20s"]
        # GNU time forks the command from itself, a small process: its %M is the command's own
        # peak RSS (a child forked from pytest would start with pytest's pages counted).
        rss_path = tmp_path / "rss"
        timed = [GNU_TIME, "-f", "%M", "-o", str(rss_path), *argv]
        with open(out_path, "w") as out_fh, open(err_path, "w") as err_fh:
            proc = subprocess.run(
                timed, stdout=out_fh, stderr=err_fh, stdin=subprocess.DEVNULL, timeout=120
            )
    out, err = out_path.read_text(), err_path.read_text()
    assert proc.returncode in (0, 1), (out, err)
    assert out.count("\n") == 1 and "Traceback" not in out + err
    if command == "check":
        assert len(out[:-1].encode()) <= 80
    peak_kib = int(rss_path.read_text().split()[-1])
    print(f"{command} {provider}: {len(body)} bytes, peak RSS {peak_kib / 1024:.1f} MiB")
    assert peak_kib < 96 * 1024  # about 28 MiB here: bounded by the 1 MiB reply limit


def test_a_slow_loris_metadata_server_cannot_hold_host_event_log(run_cli, tmp_path):
    """One byte every half second: the read gives up at --timeout; one line, exit 2."""
    with MetadataEmulator("azure", [{"EventId": "a"}]) as emu:
        emu.fault = "trickle"
        started = time.monotonic()
        log = str(tmp_path / "host_event.log")
        proc = run_cli(*_argv(["host-event-log"], emu, tmp_path, "--log-path", log), timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "timed out" in proc.stderr
    assert elapsed < 30  # bounded by --timeout (3 s) plus start-up; catches only a hang


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(st.tuples(hostile_text, hostile_text, hostile_text), min_size=1, max_size=3),
    more=st.integers(min_value=0, max_value=200),
)
def test_the_problem_message_itself_fits_the_protocol(fields, more):
    """The checker's own message, before any clamp: the agent puts it in a NodeCondition."""
    from healthcheck_plugins.maintenance_events.checker import describe
    from healthcheck_plugins.maintenance_events.metadata.events import Event

    events = [Event("e", kind, status, when) for kind, status, when in fields]
    events += events[:1] * more  # "(+N more)" takes room too
    message = describe(events)
    assert len(message.encode()) <= 80 and message.isprintable(), message
