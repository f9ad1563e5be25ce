"""--log-pattern (spec 3.3 and 8.1 TestLogPatternFlag) over real journal files written by
systemd-journal-remote, with both journal backends."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from journalfile import Record

from healthcheck_plugins.component import logmatch


@pytest.fixture
def healthy(http_server):
    server = http_server(status=200)
    return {"HOST_ADDRESS": "127.0.0.1", "KUBELET_PORT": str(server.server_address[1])}


def _hc(run_cli, systemctl, journal_dir, *args, env, backend="auto"):
    return run_cli(
        "--enable-repair=false",
        f"--systemctl={systemctl.path}",
        f"--journal-directory={journal_dir}",
        f"--journal-backend={backend}",
        *args,
        script="health-checker",
        env=env,
        timeout=60,
    )


def _kubelet(now, ago, message, **kw):
    return Record(now - ago, message, identifier="kubelet", unit="kubelet.service", **kw)


@pytest.fixture
def journal(make_journal):
    now = time.time()
    records = [
        _kubelet(now, 500, "PLEG is not healthy: before the service started"),
        _kubelet(now, 500, "pleg is not healthy: before the service started"),
        Record(now - 90, "PLEG is not healthy", identifier="containerd", unit="containerd.service"),
        _kubelet(now, 90, "PLEG is not healthy: pleg was last seen active 3m ago"),
        _kubelet(now, 80, "Pleg Is Not Healthy (mixed case)"),
        # systemd (PID 1) logging about the unit counts, as journalctl --unit shows it
        Record(
            now - 70,
            "kubelet.service: pleg is not healthy, main process exited",
            identifier="systemd",
            unit="init.scope",
            fields={"_PID": "1", "UNIT": "kubelet.service"},
        ),
        _kubelet(now, 5, "node status update: ok"),
        _kubelet(now, 4, "a" * 20000 + "b"),
    ]
    return make_journal(records)


@pytest.mark.parametrize("backend", ["native", "journalctl"])
def test_threshold_reached_in_the_window_is_unhealthy(
    run_cli, systemctl, journal, healthy, backend
):
    systemctl.up_for(200)  # the window starts 200 s ago: the two entries at -500 s are out
    proc = _hc(
        run_cli,
        systemctl,
        journal,
        "--log-pattern=3:PLEG is not healthy",
        env=healthy,
        backend=backend,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == "kubelet:kubelet was found unhealthy; repair flag : false\n"
    assert 'log pattern "PLEG is not healthy" found 3 times (threshold 3)' in proc.stderr
    proc = _hc(
        run_cli,
        systemctl,
        journal,
        "--log-pattern=4:PLEG is not healthy",
        env=healthy,
        backend=backend,
    )
    assert (proc.returncode, proc.stdout) == (0, "")


def test_loopback_shorter_than_uptime_narrows_the_window(run_cli, systemctl, journal, healthy):
    systemctl.up_for(3600)
    wide = _hc(run_cli, systemctl, journal, "--log-pattern=5:pleg is not", env=healthy)
    assert wide.returncode == 1  # since the service started: all five kubelet entries
    narrow = _hc(
        run_cli,
        systemctl,
        journal,
        "--log-pattern=2:pleg is not",
        "--loopback-time=75s",
        env=healthy,
    )
    assert narrow.returncode == 0  # only the systemd entry at -70 s is within 75 s
    assert "found" not in narrow.stderr


def test_patterns_comma_separated_and_repeated(run_cli, systemctl, journal, healthy):
    systemctl.up_for(200)
    proc = _hc(
        run_cli,
        systemctl,
        journal,
        "--log-pattern=9:nothing,1:status update: ok",
        "--log-pattern=5:zzz",
        env=healthy,
    )
    assert proc.returncode == 1
    assert 'log pattern "status update: ok" found 1 times' in proc.stderr


def test_hostile_pattern_cannot_backtrack(run_cli, systemctl, journal, healthy):
    systemctl.up_for(200)
    start = time.monotonic()
    proc = _hc(run_cli, systemctl, journal, "--log-pattern=1:^(a+)+$", env=healthy)
    assert proc.returncode == 0  # the 20,000 a's end in b: no match, and no exponential search
    assert time.monotonic() - start < 20


def test_log_check_runs_even_when_the_component_is_unhealthy(
    run_cli, systemctl, journal, http_server
):
    server = http_server(status=500)
    env = {"HOST_ADDRESS": "127.0.0.1", "KUBELET_PORT": str(server.server_address[1])}
    systemctl.up_for(200)
    proc = _hc(run_cli, systemctl, journal, "--log-pattern=1:PLEG", env=env)
    assert proc.returncode == 1
    assert "HTTP 500" in proc.stderr and 'log pattern "PLEG"' in proc.stderr


def test_never_started_unit_is_an_error(run_cli, systemctl, journal, healthy):
    systemctl.show_text("InactiveExitTimestampMonotonic=0\nInactiveExitTimestamp=\n")
    proc = _hc(run_cli, systemctl, journal, "--log-pattern=1:x", env=healthy)
    assert proc.returncode == 2
    assert proc.stdout == (
        "error checking kubelet health: unit kubelet has never started "
        "(InactiveExitTimestamp is empty)\n"
    )


def test_unreachable_systemd_is_an_error(run_cli, tmp_path, journal, healthy):
    proc = run_cli(
        f"--systemctl={tmp_path}/absent",
        f"--journal-directory={journal}",
        "--log-pattern=1:x",
        script="health-checker",
        env=healthy,
    )
    assert proc.returncode == 2
    assert proc.stdout.startswith("error checking kubelet health: systemd not reachable: ")


def test_missing_journal_directory_is_an_error(run_cli, systemctl, tmp_path, healthy):
    proc = _hc(run_cli, systemctl, tmp_path / "nope", "--log-pattern=1:x", env=healthy)
    assert proc.returncode == 2
    assert proc.stdout.startswith("error checking kubelet health: cannot read the journal")


def test_window_edges(make_journal):
    t = 1_700_000_000.25
    directory = make_journal(
        [
            _kubelet(t, 0.000001, "edge error just before"),
            _kubelet(t, 0, "edge error exactly at the start"),
            _kubelet(t, -1, "edge error after"),
        ]
    )
    for backend in ("native", "journalctl"):
        counts = logmatch.count_pattern_matches(
            "kubelet", ["EDGE ERROR"], t, directory=directory, backend=backend
        )
        assert counts == {"EDGE ERROR": 2}, backend


def test_window_start():
    assert logmatch.window_start(1000.0, 100.0, 0.0) == 900.0
    assert logmatch.window_start(1000.0, 100.0, 30.0) == 970.0
    assert logmatch.window_start(1000.0, 100.0, 100.0) == 900.0  # not shorter: service start
    assert logmatch.window_start(1000.0, 100.0, 500.0) == 900.0


def test_log_pattern_flag_as_npd():
    """NPD's TestLogPatternFlag."""
    parse = logmatch.parse_log_patterns
    one = logmatch.pattern_map(parse("10:pattern1"))
    assert one == {"pattern1": 10}
    assert logmatch.format_patterns(one) == "pattern1:10"
    two = logmatch.pattern_map(parse("10:pattern1,20:pattern2"))
    assert logmatch.format_patterns(two) == "pattern1:10 pattern2:20"
    colon = logmatch.pattern_map(parse("10:pattern1a:pattern1b,20:pattern2"))
    assert colon == {"pattern1a:pattern1b": 10, "pattern2": 20}
    for bad in ("10:", "0:pattern1", ":pattern1", ":", "notAnInteger:pattern1", "x:y", "0:x"):
        with pytest.raises(ValueError, match="invalid format"):
            parse(bad)
    with pytest.raises(ValueError, match="invalid format of the flag value: \\[x\\]"):
        parse("x")
    with pytest.raises(ValueError, match="invalid regular expression"):
        parse("1:(unclosed")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "10:",
            'invalid argument "10:" for "--log-pattern" flag: invalid format for the flag '
            "value: [10 ]: <nil>",
        ),
        (
            "0:x",
            'invalid argument "0:x" for "--log-pattern" flag: invalid format for the flag '
            "value: [0 x]: <nil>",
        ),
        (
            ":x",
            'invalid argument ":x" for "--log-pattern" flag: invalid format for the flag '
            'value: [ x]: strconv.Atoi: parsing "": invalid syntax',
        ),
        (
            "x:y",
            'invalid argument "x:y" for "--log-pattern" flag: invalid format for the flag '
            'value: [x y]: strconv.Atoi: parsing "x": invalid syntax',
        ),
    ],
)
def test_bad_log_patterns_exit_2_with_npd_text(run_cli, value, expected):
    proc = run_cli(f"--log-pattern={value}", script="health-checker")
    # NPD's whole text, cut to the 80 bytes NPD shows by default; the whole line on stderr.
    assert (proc.returncode, proc.stdout.strip()) == (2, expected[:80])
    assert expected in proc.stderr or len(expected) <= 80
    proc = run_cli("check", "kubelet", "--log-pattern", value)
    assert proc.returncode == 2
    # stdout is the protocol's line of at most 80 bytes; the whole of it is on stderr too
    assert len(proc.stdout.strip().encode()) <= 80
    assert "invalid format for the flag value" in proc.stderr


def test_invalid_regex_exits_2(run_cli):
    proc = run_cli("--log-pattern=1:a(b", script="health-checker")
    assert proc.returncode == 2
    assert proc.stdout.startswith('invalid argument "1:a(b" for "--log-pattern" flag: ')
    # the whole line on stderr, in Go's regexp words; RE2's own logging is off
    assert proc.stderr == (
        'invalid argument "1:a(b" for "--log-pattern" flag: invalid regular expression '
        '"a(b": error parsing regexp: missing closing ): `a(b`\n'
    )


def test_non_ascii_case_insensitive_and_dot_is_one_character(make_journal):
    t = 1_700_000_000.0
    directory = make_journal(
        [_kubelet(t, 0, "ÜBERLASTUNG erkannt"), _kubelet(t, -1, "€x"), _kubelet(t, -2, "ab")]
    )
    counts = logmatch.count_pattern_matches(
        "kubelet", ["überlastung", "^.x$", "^a$"], t, directory=directory
    )
    assert counts == {"überlastung": 1, "^.x$": 1, "^a$": 0}


# Pattern pieces that batch safely and pieces that must not (newline, anchors, flags). Not \B:
# a bare RE2 search finds it inside a multi-byte character (between two non-word bytes), a
# position the batched search (and Go, which steps by rune) never visits.
PIECES = ["a", "B", "é", " ", ".", ".*", "a+", "b?", r"\w", r"\W", r"\b", "[ab]", "(a|b)"]
PIECES += ["^", "$", r"\z", r"\A", r"\n", r"\s", "(?s)", "(?m)", "(?-i)", "[^a]"]


@st.composite
def grep_patterns(draw):
    expr = "".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=4)))
    try:
        logmatch.compile_pattern(expr)
    except ValueError:
        return "a"
    return expr


@settings(max_examples=500, deadline=None)
@given(grep_patterns(), st.lists(st.text(alphabet="abAÉé \n", max_size=6), max_size=12))
def test_batched_count_equals_a_search_per_message(pattern, messages):
    raw = [m.encode() for m in messages]
    regex = logmatch.compile_pattern(pattern)
    expected = sum(1 for m in raw if regex.search(m) is not None)
    assert logmatch.count_messages_containing(pattern, raw) == expected


def test_batching_is_chosen_only_where_it_is_exact():
    assert logmatch.batchable("pleg is not healthy")
    assert logmatch.batchable("deadline exceeded|failed to reserve")
    for pattern in ("^pleg", "pleg$", r"pleg\z", r"a\nb", "(?s)a.b", r"a\sb", "[^a]"):
        assert not logmatch.batchable(pattern), pattern
