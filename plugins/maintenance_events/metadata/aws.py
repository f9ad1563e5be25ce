"""AWS EC2 instance metadata (IMDSv2): scheduled maintenance events."""

from __future__ import annotations

from healthcheck_plugins.maintenance_events.metadata.events import (
    Event,
    Reading,
    load_json,
    text_of,
)

NAME = "aws"
DEFAULT_ENDPOINT = "http://169.254.169.254"
EVENTS_PATH = "/latest/meta-data/events/maintenance/scheduled"
HEADERS: dict[str, str] = {}
TOKEN_PATH = "/latest/api/token"  # noqa: S105 (a path, not a secret)
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"  # noqa: S105 (a header name)
TOKEN_HEADER = "X-aws-ec2-metadata-token"  # noqa: S105 (a header name)
CONTENT_TYPES = ("", "application/json", "text/json", "text/plain", "application/octet-stream")

DISRUPTIVE_TYPES = (
    "instance-reboot",
    "system-reboot",
    "system-maintenance",
    "instance-retirement",
    "instance-stop",
)
DISRUPTIVE_STATUSES = ("active",)


def parse(body: bytes) -> Reading:
    """Events from the JSON array IMDS serves (``[]`` when none); never raises."""
    value, error = load_json(body)
    if error:
        return Reading.failed(error)
    if not isinstance(value, list):
        return Reading.failed(f"reply is a JSON {type(value).__name__}, not an array")
    events = []
    for item in value:
        if not isinstance(item, dict):
            return Reading.failed("event is not a JSON object")
        code, state = text_of(item.get("Code")), text_of(item.get("State"))
        if code is None or state is None:
            return Reading.failed("event without Code or State")
        event_id = text_of(item.get("EventId")) or code
        not_before = item.get("NotBefore")
        events.append(
            Event(event_id, code, state, not_before if isinstance(not_before, str) else "")
        )
    return Reading(events)
