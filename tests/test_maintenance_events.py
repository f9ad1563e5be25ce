"""maintenance-events against a real metadata server emulator on loopback, per provider.

The emulator (tests/metadata_emulator.py) is a real HTTP/1.1 server; the checks run as the
installed ``healthcheck`` command, exactly as NPD or a timer runs them.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from metadata_emulator import MetadataEmulator

REBOOT = {
    "event-id": "e-reboot",
    "event-type": "SystemMaintenance.Reboot",
    "event-status": "Scheduled",
    "not-before": "2026-11-23T02:00:00Z",
}
NATIVE_EVENTS = {
    "alibaba": [REBOOT],
    "aws": [
        {
            "NotBefore": "21 Jan 2019 09:00:43 GMT",
            "NotAfter": "21 Jan 2019 09:17:23 GMT",
            "Code": "system-reboot",
            "Description": "scheduled reboot",
            "EventId": "instance-event-0d59937288b749b32",
            "State": "active",
        }
    ],
    "azure": [
        {
            "EventId": "602d9444-d2cd-49c7-8624-8643e7171297",
            "EventStatus": "Scheduled",
            "EventType": "Reboot",
            "ResourceType": "VirtualMachine",
            "Resources": ["vm1"],
            "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
            "Description": "Host server is undergoing maintenance.",
            "EventSource": "Platform",
            "DurationInSeconds": 5,
        }
    ],
    "gcp": "TERMINATE_ON_HOST_MAINTENANCE",
}
EXPECTED = {
    "alibaba": "SystemMaintenance.Reboot Scheduled at 2026-11-23T02:00:00Z",
    "aws": "system-reboot active at 2019-01-21T09:00:43Z",
    "azure": "Reboot Scheduled at 2016-09-19T18:29:47Z",
    "gcp": "TERMINATE_ON_HOST_MAINTENANCE Pending, no time given",
}
NO_EVENTS = {"alibaba": [], "aws": [], "azure": [], "gcp": "NONE"}


@pytest.fixture
def check(run_cli, tmp_path):
    """Run ``healthcheck check maintenance-events`` against an emulator; state in tmp_path."""

    def run(emu: MetadataEmulator, *extra: str):
        return run_cli(
            "check",
            "maintenance-events",
            "--provider",
            emu.provider,
            "--endpoint",
            emu.url,
            "--state-dir",
            str(tmp_path / "state"),
            *extra,
        )

    return run


@pytest.mark.parametrize("provider", ["alibaba", "aws", "azure", "gcp"])
def test_no_events_is_ok(check, provider):
    with MetadataEmulator(provider, NO_EVENTS[provider]) as emu:
        proc = check(emu)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == f"No {provider} maintenance event"


@pytest.mark.parametrize("provider", ["alibaba", "aws", "azure", "gcp"])
def test_one_disruptive_event_is_a_problem_saying_what_and_when(check, provider):
    with MetadataEmulator(provider, NATIVE_EVENTS[provider]) as emu:
        proc = check(emu)
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.strip() == EXPECTED[provider]
    assert len(proc.stdout.strip().encode()) <= 80


def test_several_events_soonest_first_with_a_count(check):
    events = [
        dict(REBOOT, **{"event-id": "e-late", "not-before": "2026-11-25T02:00:00Z"}),
        dict(
            REBOOT,
            **{
                "event-id": "e-soon",
                "event-type": "SystemMaintenance.Redeploy",
                "not-before": "2026-11-24T03:30:00+08:00",
            },
        ),
        dict(REBOOT, **{"event-id": "e-mid", "not-before": "2026-11-24T20:00:00Z"}),
    ]
    with MetadataEmulator("alibaba", events) as emu:
        proc = check(emu)
    assert proc.returncode == 1
    # +08:00 is normalised to UTC, which makes the Redeploy the soonest
    assert proc.stdout.strip() == (
        "SystemMaintenance.Redeploy Scheduled at 2026-11-23T19:30:00Z (+2 more)"
    )


def test_longest_type_with_a_count_still_fits_80_bytes(check):
    events = [
        dict(
            REBOOT,
            **{"event-id": f"e-{i}", "event-type": "SystemMaintenance.RebootAndReInitErrorDisk"},
        )
        for i in range(12)
    ]
    with MetadataEmulator("alibaba", events) as emu:
        proc = check(emu)
    line = proc.stdout.strip()
    assert proc.returncode == 1
    assert len(line.encode()) <= 80
    assert line.endswith("Scheduled at 2026-11-23T02:00:00Z (+11 more)")
    assert line.startswith("SystemMaintenance.RebootAndReInit")


def test_status_moves_scheduled_executing_executed(check):
    event = dict(REBOOT)
    with MetadataEmulator("alibaba", [event]) as emu:
        seen = []
        for status in ("Inquiring", "Scheduled", "Executing", "Executed"):
            event["event-status"] = status
            proc = check(emu)
            seen.append((status, proc.returncode, proc.stdout.strip()))
    assert seen[0][1:] == (1, "SystemMaintenance.Reboot Inquiring at 2026-11-23T02:00:00Z")
    assert seen[1][1] == 1 and seen[2][1] == 1
    assert seen[2][2] == "SystemMaintenance.Reboot Executing at 2026-11-23T02:00:00Z"
    assert seen[3][1:] == (0, "No disruptive alibaba maintenance event (1 other)")


@pytest.mark.parametrize("status", ["Executed", "Avoided", "Canceled", "Failed"])
def test_end_states_clear_the_problem(check, status):
    with MetadataEmulator("alibaba", [dict(REBOOT, **{"event-status": status})]) as emu:
        assert check(emu).returncode == 0


def test_informative_types_are_not_a_problem_unless_configured(check):
    event = dict(REBOOT, **{"event-type": "SystemMaintenance.IsolateErrorDisk"})
    with MetadataEmulator("alibaba", [event]) as emu:
        assert check(emu).returncode == 0
        proc = check(emu, "--disruptive-types", "SystemMaintenance.IsolateErrorDisk,Other.Type")
        assert proc.returncode == 1
        assert proc.stdout.startswith("SystemMaintenance.IsolateErrorDisk Scheduled")
        # statuses are configurable too: only Executing counts now
        assert check(emu, "--disruptive-statuses", "Executing").returncode == 0


def test_openapi_and_notification_spellings(check):
    events = {
        "InstanceSystemEventSet": {
            "InstanceSystemEventType": [
                {
                    "EventId": "e-api",
                    "EventType": {"Code": 1, "Name": "SystemFailure.Stop"},
                    "EventCycleStatus": {"Code": 24, "Name": "Executing"},
                    "NotBefore": "2026-11-23T05:00:00Z",
                },
                {
                    "eventId": "e-note",
                    "eventType": "InstanceExpiration.Delete",
                    "eventStatus": "Scheduled",
                    "notBefore": "2026-11-22T05:00:00Z",
                },
            ]
        }
    }
    with MetadataEmulator("alibaba", events) as emu:
        proc = check(emu)
    assert proc.returncode == 1
    assert (
        proc.stdout.strip()
        == "InstanceExpiration.Delete Scheduled at 2026-11-22T05:00:00Z (+1 more)"
    )


# ------------------------------------------------------------------------------------ faults


FAULT_WORDS = [
    ("404", "HTTP 404"),
    ("500", "HTTP 500"),
    ("invalid-json", "not JSON"),
    ("truncated", "connection closed"),
    ("huge", "larger than 1048576 bytes"),
    ("content-type", "unexpected content type 'text/html'"),
]
# GCP serves a text value, not JSON: its nonsense case is test_gcp_nonsense_value_is_unknown.
FAULT_CASES = [
    (provider, fault, words)
    for provider in ("alibaba", "aws", "azure", "gcp")
    for fault, words in FAULT_WORDS
    if not (provider == "gcp" and fault == "invalid-json")
]


@pytest.mark.parametrize(("provider", "fault", "words"), FAULT_CASES)
def test_faults_are_unknown_never_ok(check, provider, fault, words):
    with MetadataEmulator(provider, NATIVE_EVENTS[provider]) as emu:
        emu.fault = fault
        proc = check(emu)
    assert proc.returncode == 2, proc.stdout
    line = proc.stdout.strip()
    assert line.startswith(f"cannot read {provider} events:")
    assert words in line
    assert len(line.encode()) <= 80


def test_gcp_nonsense_value_is_unknown(check):
    with MetadataEmulator("gcp", "<html>proxy</html>") as emu:
        proc = check(emu)
    assert proc.returncode == 2
    assert "not a maintenance-event value" in proc.stdout


def test_hang_past_the_timeout_is_unknown_in_time(check):
    with MetadataEmulator("alibaba", [REBOOT]) as emu:
        emu.fault = "hang"
        start = time.monotonic()
        proc = check(emu, "--timeout", "1s")
        elapsed = time.monotonic() - start
    assert proc.returncode == 2
    assert "timed out" in proc.stdout
    assert elapsed < 2.9  # the emulator would answer after 3 s


def test_unreachable_endpoint_is_unknown(check, run_cli, tmp_path):
    proc = run_cli(
        "check",
        "maintenance-events",
        "--provider",
        "aws",
        "--endpoint",
        "http://127.0.0.1:9",
        "--state-dir",
        str(tmp_path),
    )
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read aws events: cannot connect")


# ------------------------------------------------------------------------------------ tokens


@pytest.mark.parametrize("provider", ["alibaba", "aws"])
def test_token_required_then_cached_one_request_per_check(check, provider):
    with MetadataEmulator(provider, NATIVE_EVENTS[provider]) as emu:
        emu.require_token = True
        first = check(emu)
        assert first.returncode == 1, first.stdout
        assert emu.requests("PUT") == 1 and emu.requests("GET") == 1
        before = emu.requests()
        for _ in range(3):
            assert check(emu).returncode == 1
        assert emu.requests() - before == 3  # steady state: one GET per check
        assert emu.requests("PUT") == 1
        assert emu.token_ttls == [21600]


def test_token_state_file_is_private(check, tmp_path):
    with MetadataEmulator("alibaba", []) as emu:
        emu.require_token = True
        check(emu)
    mode = os.stat(tmp_path / "state" / "metadata-token.json").st_mode & 0o777
    assert mode == 0o600


@pytest.mark.parametrize(
    "entry",
    [
        {"token": "t\u20ac"},  # not latin-1: the header encoding raised
        {"token": "x" * (1 << 20)},  # 1 MiB sent as a header
        {"token": "a\tb"},
        {"token": "ok", "until": float("nan")},  # json writes NaN; it never expired
        {"token": "ok", "until": 1e300},  # longer than any TTL: never renewed
        {"token": "ok", "until": True},
    ],
)
def test_a_cached_token_we_could_not_have_written_is_fetched_afresh(check, tmp_path, entry):
    import json

    with MetadataEmulator("alibaba", [REBOOT]) as emu:
        emu.require_token = True
        state = tmp_path / "state"
        state.mkdir()
        key = f"alibaba 127.0.0.1:{emu.server.server_address[1]}"
        entry = {"until": time.time() + 3600, **entry}
        (state / "metadata-token.json").write_text(json.dumps({key: entry}))
        proc = check(emu)
        assert proc.returncode == 1, proc.stdout
        assert emu.requests("PUT") == 1 and emu.requests("GET") == 1


def test_revoked_token_is_dropped_and_fetched_once_more(check):
    with MetadataEmulator("alibaba", [REBOOT]) as emu:
        emu.require_token = True
        assert check(emu).returncode == 1
        emu.revoke_tokens()
        proc = check(emu)
        assert proc.returncode == 1, proc.stdout
        assert emu.requests("PUT") == 2
        assert emu.requests("GET") == 3  # refused, then retried with the fresh token


def test_token_is_renewed_before_its_ttl_ends(check):
    with MetadataEmulator("aws", []) as emu:
        emu.require_token = True
        assert check(emu, "--token-ttl", "2s").returncode == 0
        assert check(emu, "--token-ttl", "2s").returncode == 0
        assert emu.requests("PUT") == 1
        time.sleep(2.1)
        assert check(emu, "--token-ttl", "2s").returncode == 0
        assert emu.requests("PUT") == 2
        assert emu.token_ttls == [2, 2]


def test_plain_mode_only_when_the_metaserver_allows_it(check):
    with MetadataEmulator("alibaba", [REBOOT]) as emu:
        emu.tokens_supported = False
        assert check(emu).returncode == 1
        assert check(emu).returncode == 1
        # the allowed plain mode is remembered: the second check is a single GET
        assert emu.requests("PUT") == 1 and emu.requests("GET") == 2
        # hardened mode switched on later: the plain record is dropped, a token fetched
        emu.tokens_supported = True
        emu.require_token = True
        assert check(emu).returncode == 1
        assert emu.requests("PUT") == 2


def test_no_token_and_no_plain_mode_is_unknown(check):
    with MetadataEmulator("aws", []) as emu:
        emu.tokens_supported = False
        emu.require_token = True
        proc = check(emu)
    assert proc.returncode == 2
    assert "HTTP 401 without a token, and none was issued" in proc.stdout


def test_token_is_never_printed(check, tmp_path):
    with MetadataEmulator("alibaba", []) as emu:
        emu.require_token = True
        proc = check(emu, "--verbose")
        token = next(iter(emu.tokens))
    assert token not in proc.stdout + proc.stderr


@pytest.mark.parametrize("provider", ["azure", "gcp"])
def test_required_headers_are_sent(check, provider):
    # the emulator refuses requests without Metadata: true / Metadata-Flavor: Google
    with MetadataEmulator(provider, NO_EVENTS[provider]) as emu:
        assert check(emu).returncode == 0
        assert emu.requests() == 1


def test_connection_is_reused_across_polls_in_one_process():
    """The agent polls from one process: one keep-alive connection serves every poll."""
    from healthcheck_plugins.maintenance_events.metadata import fetch

    with MetadataEmulator("azure", NATIVE_EVENTS["azure"]) as emu, _tmpdir() as state:
        stats: dict = {}
        for _ in range(5):
            reading = fetch.read_events("azure", emu.url, 2.0, state, stats=stats)
            assert reading.ok and len(reading.events) == 1
            assert stats["requests"] == 1
        conns = [c for (h, p), c in fetch._idle.items() if emu.url.endswith(f":{p}")]
        assert len(conns) == 1 and conns[0].connects == 1


def _tmpdir():
    import tempfile

    return tempfile.TemporaryDirectory()


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--provider", "openstack"], "is not one of auto, alibaba"),
        (["--endpoint", "https://100.100.100.200"], "use an http:// URL"),
        (["--endpoint", "http://host:99999"], "bad port"),
        (["--token-ttl", "7h"], "must be between 1s and 6h"),
        (["--token-ttl", "soon"], "soon"),
        (["--timeout=0s"], 'duration "0s" must be > 0'),
    ],
)
def test_bad_flags_are_one_line_exit_2(run_cli, args, words):
    proc = run_cli("check", "maintenance-events", *args)
    assert proc.returncode == 2
    # stdout is the protocol's one line of at most 80 bytes; a longer line is whole on stderr
    assert words in proc.stdout + proc.stderr
    assert proc.stdout.count("\n") == 1 and len(proc.stdout.encode()) <= 81
    assert "Traceback" not in proc.stdout + proc.stderr


def test_auto_off_cloud_is_unknown_without_probing(run_cli, tmp_path):
    dmi = tmp_path / "dmi"
    dmi.mkdir()
    (dmi / "sys_vendor").write_text("QEMU\n")
    proc = run_cli("check", "maintenance-events", "--dmi-root", str(dmi))
    assert proc.returncode == 2
    assert proc.stdout.strip() == "no known cloud in DMI (sys_vendor 'QEMU'); use --provider"


def test_unwritable_state_dir_is_unknown_not_a_traceback(check, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with MetadataEmulator("alibaba", []) as emu:
        emu.require_token = True
        proc = check(emu, "--state-dir", str(blocker / "sub"))
    assert proc.returncode == 2
    assert proc.stdout.startswith("cannot read alibaba events: cannot read state file")
