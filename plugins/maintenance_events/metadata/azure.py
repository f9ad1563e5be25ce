"""Azure Scheduled Events (instance metadata service)."""

from __future__ import annotations

from healthcheck_plugins.maintenance_events.metadata.events import (
    Event,
    Reading,
    load_json,
    text_of,
)

NAME = "azure"
DEFAULT_ENDPOINT = "http://169.254.169.254"
EVENTS_PATH = "/metadata/scheduledevents?api-version=2020-07-01"
HEADERS = {"Metadata": "true"}
TOKEN_PATH = None
CONTENT_TYPES = ("", "application/json", "text/json", "text/plain")

DISRUPTIVE_TYPES = ("Reboot", "Redeploy", "Freeze", "Preempt", "Terminate")
DISRUPTIVE_STATUSES = ("Scheduled", "Started")


def parse(body: bytes) -> Reading:
    """Events from ``{"DocumentIncarnation": n, "Events": [...]}``; never raises."""
    value, error = load_json(body)
    if error:
        return Reading.failed(error)
    if not isinstance(value, dict) or not isinstance(value.get("Events"), list):
        return Reading.failed("reply has no Events array")
    events = []
    for item in value["Events"]:
        if not isinstance(item, dict):
            return Reading.failed("event is not a JSON object")
        event_id = text_of(item.get("EventId"))
        event_type = text_of(item.get("EventType"))
        status = text_of(item.get("EventStatus"))
        if event_id is None or event_type is None or status is None:
            return Reading.failed("event without EventId, EventType or EventStatus")
        not_before = item.get("NotBefore")
        events.append(
            Event(event_id, event_type, status, not_before if isinstance(not_before, str) else "")
        )
    return Reading(events)
