"""Every reader of a state record against records we did not write (hypothesis).

The state directory may be shared, restored from a backup or written by an older version, so
each record is read as hostile: whatever JSON sits under a consumer's key (numbers past a
float, NaN, nesting, wrong shapes), the consumer answers as if there were no usable record or
uses what is valid in it, and never raises. Consumers: the repair cooldown, the conntrack drop
baseline, the host_event.log dedup record and the metadata token cache.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcheck.sdk import repair
from healthcheck_plugins.maintenance_events.metadata import fetch, hostlog
from healthcheck_plugins.maintenance_events.metadata.events import Event

sys.path.insert(0, os.path.dirname(__file__))
from test_conntrack import _stat_row, make_proc

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**63, 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _write(path, record) -> None:
    with open(path, "w") as fh:
        json.dump(record, fh)  # NaN and Infinity as Python's json writes them


def _ours_in_places(**fields):
    """A record with our keys holding anything, or anything at all."""
    return st.fixed_dictionaries({}, optional=fields) | JSON


@FUZZ
@given(record=_ours_in_places(boot_id=st.just("boot-1"), boottime=SCALARS | JSON))
def test_repair_cooldown_record(record):
    now = time.clock_gettime(time.CLOCK_BOOTTIME)
    since = repair._within_cooldown({"x": record}, "x", "boot-1", now, 120.0)
    assert since is None or (math.isfinite(since) and 0 <= since <= 120.0)


@FUZZ
@given(
    record=_ours_in_places(
        boot_id=st.just("boot-1") | JSON,
        counters=st.dictionaries(st.sampled_from(["drop", "insert_failed"]), SCALARS) | JSON,
    )
)
def test_conntrack_baseline_record(tmp_path_factory, record):
    from healthcheck_plugins import conntrack

    root = tmp_path_factory.mktemp("ct")
    proc_root = make_proc(root / "proc", 10, 100, stats=[_stat_row(drop=7)])
    state = root / "state"
    state.mkdir()
    _write(state / "conntrack.json", {os.path.realpath(proc_root): record})
    options = SimpleNamespace(proc_root=str(proc_root), state_dir=str(state))
    growth, first = conntrack._drops_since_last_run(options)
    assert all(isinstance(v, int) and v > 0 for v in growth.values())
    assert first or isinstance(record, dict)


@FUZZ
@given(record=JSON | st.text(max_size=200))
def test_host_event_log_dedup_record(tmp_path_factory, record):
    root = tmp_path_factory.mktemp("hl")
    log = root / "host_event.log"
    _write(root / hostlog.STATE_FILE, {os.path.abspath(log): record})
    events = [Event("e-1", "SystemMaintenance.Reboot", "Scheduled", "2026-01-01T00:00:00Z")]
    written = hostlog.write_new_events(events, str(log), str(root))
    assert written in (0, 1)
    assert hostlog.write_new_events(events, str(log), str(root)) == 0  # now it is recorded


@FUZZ
@given(
    record=_ours_in_places(
        token=st.text(max_size=20) | JSON,
        until=SCALARS | st.floats(min_value=time.time() + 3600),
        plain=st.booleans() | JSON,
    )
)
def test_metadata_token_cache_record(tmp_path_factory, record):
    root = tmp_path_factory.mktemp("tok")
    session = object.__new__(fetch._Session)
    session.state_path = str(root / fetch.TOKEN_STATE_FILE)
    session.key = "alibaba 127.0.0.1:1"
    _write(session.state_path, {session.key: record})
    entry = session.cached()
    if entry is not None:
        assert math.isfinite(entry["until"]) and entry["until"] > time.time()
        token = entry.get("token")
        assert entry.get("plain") is True or fetch._is_token(token)
        if token is not None and entry.get("plain") is not True:
            token.encode("latin-1")  # what the request does with it
