"""Google Compute Engine metadata server: the instance's maintenance-event value."""

from __future__ import annotations

import re

from healthcheck_plugins.maintenance_events.metadata.events import Event, Reading

NAME = "gcp"
DEFAULT_ENDPOINT = "http://metadata.google.internal"
EVENTS_PATH = "/computeMetadata/v1/instance/maintenance-event"
HEADERS = {"Metadata-Flavor": "Google"}
TOKEN_PATH = None
CONTENT_TYPES = ("", "application/text", "text/plain")

# GCE gives no status; an announced event is pending until the value returns to NONE.
PENDING = "Pending"
DISRUPTIVE_TYPES = ("MIGRATE_ON_HOST_MAINTENANCE", "TERMINATE_ON_HOST_MAINTENANCE")
DISRUPTIVE_STATUSES = (PENDING,)
_VALUE = re.compile(r"[A-Z][A-Z0-9_]{0,63}\Z")


def parse(body: bytes) -> Reading:
    """``NONE`` is no event; another upper-case word is one pending event; never raises."""
    try:
        value = body.decode("ascii").strip()
    except UnicodeDecodeError:
        return Reading.failed("reply is not ASCII")
    if value == "NONE":
        return Reading()
    if not _VALUE.match(value):
        return Reading.failed("reply is not a maintenance-event value")
    return Reading([Event(value, value, PENDING)])
