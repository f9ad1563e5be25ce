"""Each provider's parser takes arbitrary bytes and JSON: never an exception, always a Reading,
and through the checker's judgement always a Result. Plus the documented shapes, exactly."""

from __future__ import annotations

import calendar
import datetime
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthcheck import Result, Status
from healthcheck_plugins.maintenance_events.checker import judge
from healthcheck_plugins.maintenance_events.metadata import alibaba, aws, azure, gcp
from healthcheck_plugins.maintenance_events.metadata.events import Reading, parse_time

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
PARSERS = {"alibaba": alibaba.parse, "aws": aws.parse, "azure": azure.parse, "gcp": gcp.parse}
FIELD_NAMES = [
    "event-id",
    "event-type",
    "event-status",
    "not-before",
    "eventId",
    "eventType",
    "eventStatus",
    "notBefore",
    "EventId",
    "EventType",
    "EventCycleStatus",
    "EventStatus",
    "NotBefore",
    "Code",
    "State",
    "Name",
    "Events",
    "InstanceSystemEventSet",
    "InstanceSystemEventType",
    "data",
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=30,
)


def _encode(value) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@pytest.mark.parametrize("provider", sorted(PARSERS))
@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_arbitrary_json_never_raises_and_judges_to_a_result(provider, value):
    reading = PARSERS[provider](_encode(value))
    assert isinstance(reading, Reading)
    assert reading.ok or (isinstance(reading.error, str) and reading.error)
    result = judge(reading, provider)
    assert isinstance(result, Result)
    if not reading.ok:
        assert result.status == Status.UNKNOWN  # a failed read is never "no events"
    for event in reading.events:
        assert event.id.isprintable() and event.type.isprintable()


@pytest.mark.parametrize("provider", sorted(PARSERS))
@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(provider, body):
    reading = PARSERS[provider](body)
    assert isinstance(reading, Reading)
    assert isinstance(judge(reading, provider), Result)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_parse_time_never_raises(text):
    when = parse_time(text)
    assert when is None or isinstance(when, int)


@settings(max_examples=500, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 12, 31, 23, 59, 59)
    )
)
def test_epoch_arithmetic_agrees_with_the_standard_library(when):
    clock = f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    iso = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{clock}Z"
    expected = calendar.timegm(when.timetuple())
    assert parse_time(iso) == expected
    month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][
        when.month - 1
    ]
    rfc = f"{when.day} {month} {when.year:04d} {clock} GMT"
    assert parse_time(rfc) == expected


def test_deeply_nested_json_is_unknown_not_a_crash():
    body = b"[" * 100000 + b"]" * 100000
    reading = alibaba.parse(body)
    assert not reading.ok


@pytest.mark.parametrize(
    "body",
    [b"", b"  \n", b"[]", b"{}", b'{"active-system-events": []}'],
)
def test_alibaba_empty_forms_mean_no_events(body):
    reading = alibaba.parse(body)
    assert reading.ok and reading.events == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"null", "reply holds no event list"),
        (b'{"RequestId": "x"}', "reply holds no event list"),
        (b'[{"event-id": "e"}]', "event without id, type or status"),
        (b"[1]", "event is a JSON int, not an object"),
        (b"\xff\xfe", "reply is not UTF-8"),
    ],
)
def test_alibaba_nonsense_is_an_error(body, error):
    assert alibaba.parse(body).error == error


def test_aws_times_are_rfc1123_and_empty_body_is_nonsense():
    body = json.dumps(
        [
            {
                "NotBefore": "21 Jan 2019 09:00:43 GMT",
                "Code": "system-reboot",
                "State": "active",
                "EventId": "instance-event-1",
            }
        ]
    ).encode()
    (event,) = aws.parse(body).events
    assert (event.id, event.type, event.status, event.not_before) == (
        "instance-event-1",
        "system-reboot",
        "active",
        "2019-01-21T09:00:43Z",
    )
    assert not aws.parse(b"").ok
    assert aws.parse(b"{}").error == "reply is a JSON dict, not an array"


def test_azure_started_event_without_not_before():
    event = {"EventId": "a", "EventStatus": "Started", "EventType": "Freeze", "NotBefore": ""}
    body = json.dumps({"DocumentIncarnation": 2, "Events": [event]}).encode()
    reading = azure.parse(body)
    assert judge(reading, "azure") == Result.problem("Freeze Started, no time given")
    assert azure.parse(b'{"DocumentIncarnation": 2}').error == "reply has no Events array"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"NONE", Status.OK),
        (b"NONE\n", Status.OK),
        (b"MIGRATE_ON_HOST_MAINTENANCE", Status.PROBLEM),
        (b"TERMINATE_ON_HOST_MAINTENANCE", Status.PROBLEM),
        (b"SOME_FUTURE_VALUE", Status.OK),  # an event, but not a disruptive type by default
        (b"none", Status.UNKNOWN),
        (b"", Status.UNKNOWN),
        (b"<html>", Status.UNKNOWN),
    ],
)
def test_gcp_values(body, status):
    assert judge(gcp.parse(body), "gcp").status == status


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2019-04-12T01:01:01Z", "2019-04-12T01:01:01Z"),
        ("2019-04-12T09:01:01+08:00", "2019-04-12T01:01:01Z"),
        ("2019-04-12T01:01:01.123Z", "2019-04-12T01:01:01Z"),
        ("Mon, 19 Sep 2016 18:29:47 GMT", "2016-09-19T18:29:47Z"),
        ("21 Jan 2019 09:00:43 GMT", "2019-01-21T09:00:43Z"),
    ],
)
def test_time_spellings(text, iso):
    from healthcheck_plugins.maintenance_events.metadata.events import format_time

    assert format_time(parse_time(text)) == iso


@pytest.mark.parametrize(
    "text",
    [
        "2019-13-01T00:00:00Z",
        "2019-02-29T00:00:00Z",
        "31 Foo 2019 00:00:00 GMT",
        "soon",
        "2019-04-12T24:00:00Z",
    ],
)
def test_bad_times_are_kept_as_text_not_parsed(text):
    from healthcheck_plugins.maintenance_events.metadata.events import Event

    assert parse_time(text) is None
    assert Event("e", "t", "s", text).not_before == text


@pytest.mark.parametrize(
    "text",
    [
        "٢٠٢٦-١١-٢٣T02:00:00Z",  # Arabic-Indic digits
        "2026-11-23T０２:00:00Z",  # fullwidth digits
        "2026-11-23T02:00:00+٠١:00",
        "Mon, ١٩ Sep 2016 18:29:47 GMT",
        "Mon, 19\u2003Sep 2016 18:29:47 GMT",  # an em space where a blank goes
    ],
)
def test_times_take_ascii_digits_and_blanks_only(text):
    """Before: \\d and \\s took any Unicode digit or space, so these were read as real times."""
    assert parse_time(text) is None
