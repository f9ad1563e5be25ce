"""Alibaba Cloud ECS metaserver: active system events, hardened (token) mode.

The reply of ``active-system-events`` has no published sample, so :func:`parse` accepts every
documented spelling (metadata, notification and OpenAPI style) and calls anything else nonsense.
"""

from __future__ import annotations

from healthcheck_plugins.maintenance_events.metadata.events import (
    Event,
    Reading,
    load_json,
    pick,
    text_of,
)

NAME = "alibaba"
DEFAULT_ENDPOINT = "http://100.100.100.200"
EVENTS_PATH = "/latest/maintenance/active-system-events"
HEADERS: dict[str, str] = {}
TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"  # noqa: S105 (a header name)
TOKEN_HEADER = "X-aliyun-ecs-metadata-token"  # noqa: S105 (a header name)
CONTENT_TYPES = ("", "application/json", "text/json", "text/plain", "application/octet-stream")

DISRUPTIVE_TYPES = (
    "SystemMaintenance.Reboot",
    "SystemMaintenance.Redeploy",
    "SystemMaintenance.Stop",
    "SystemMaintenance.RebootAndIsolateErrorDisk",
    "SystemMaintenance.RebootAndReInitErrorDisk",
    "SystemFailure.Reboot",
    "SystemFailure.Redeploy",
    "SystemFailure.Stop",
    "SystemFailure.Delete",
    "InstanceFailure.Reboot",
    "InstanceExpiration.Stop",
    "InstanceExpiration.Delete",
    "AccountUnbalanced.Stop",
    "AccountUnbalanced.Delete",
)
DISRUPTIVE_STATUSES = ("Inquiring", "Scheduled", "Executing")

_ID = ("event-id", "eventId", "EventId")
_TYPE = ("event-type", "eventType", "EventType")
_STATUS = ("event-status", "eventStatus", "EventCycleStatus", "EventStatus")
_NOT_BEFORE = ("not-before", "notBefore", "NotBefore")
# Where a wrapping object may keep the list (OpenAPI nests it one level deeper).
_WRAPPERS = ("active-system-events", "events", "Events", "data", "Data", "InstanceSystemEventSet")
_OPENAPI_INNER = ("InstanceSystemEventType",)


def _event_list(value):
    """The list of event objects inside ``value``, or ``None`` when there is none."""
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return None
    if not value:
        return []
    if pick(value, _ID) is not None:
        return [value]  # a single event, unwrapped
    inner = pick(value, _WRAPPERS)
    if isinstance(inner, dict):
        inner = pick(inner, _OPENAPI_INNER)
    return inner if isinstance(inner, list) else None


def parse_event(obj) -> Event | str:
    """One event object, or the reason it is not one."""
    if not isinstance(obj, dict):
        return f"event is a JSON {type(obj).__name__}, not an object"
    event_id = text_of(pick(obj, _ID))
    event_type = text_of(pick(obj, _TYPE))
    status = text_of(pick(obj, _STATUS))
    if event_id is None or event_type is None or status is None:
        return "event without id, type or status"
    not_before = pick(obj, _NOT_BEFORE)
    return Event(event_id, event_type, status, not_before if isinstance(not_before, str) else "")


def parse(body: bytes) -> Reading:
    """Events from the body of ``active-system-events``; never raises."""
    if not body.strip():
        return Reading()
    value, error = load_json(body)
    if error:
        return Reading.failed(error)
    items = _event_list(value)
    if items is None:
        return Reading.failed("reply holds no event list")
    events = []
    for item in items:
        event = parse_event(item)
        if isinstance(event, str):
            return Reading.failed(event)
        events.append(event)
    return Reading(events)
