"""``healthcheck status``'s view of remediation: ask the local agent, cheaply, never the API.

The agent's ``/conditions`` (default ``127.0.0.1:20256``, or ``$HEALTHCHECK_AGENT_SERVER``)
carries a ``NodeHealthcheckRemediation`` entry when remediation is configured. No agent, an
agent without remediation, or any error: nothing is shown. One request, 0.3 s at most, a
bounded body.
"""

from __future__ import annotations

import http.client
import json
import os
from typing import Any

from healthcheck.sdk.text import one_line

DEFAULT_SERVER = "127.0.0.1:20256"
TIMEOUT = 0.3
MAX_BODY = 1 << 20


def agent_entry(server: str | None = None, timeout: float = TIMEOUT) -> dict[str, Any] | None:
    """The remediation entry of the local agent's ``/conditions``; ``None`` when unavailable."""
    address = server or os.environ.get("HEALTHCHECK_AGENT_SERVER") or DEFAULT_SERVER
    host, _, port = address.rpartition(":")
    if not (port.isascii() and port.isdigit()) or len(port) > 5:
        return None
    conn = http.client.HTTPConnection(host.strip("[]") or "127.0.0.1", int(port), timeout=timeout)
    try:
        conn.request("GET", "/conditions")
        reply = conn.getresponse()
        body = reply.read(MAX_BODY + 1) if reply.status == 200 else b""
        entries = json.loads(body) if body and len(body) <= MAX_BODY else []
    except (OSError, ValueError, RecursionError, http.client.HTTPException):
        return None
    finally:
        conn.close()
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict) and entry.get("type") == "NodeHealthcheckRemediation":
            return entry
    return None


def status_line(entry: dict[str, Any] | None) -> str | None:
    """``remediation (agent): Remediating: maintenance: done; slot node-healthcheck-slot-0``."""
    if entry is None:
        return None
    return one_line(f"remediation (agent): {entry.get('reason')}: {entry.get('message')}", 200)
