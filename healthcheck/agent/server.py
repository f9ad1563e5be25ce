"""NPD's local server: ``/healthz`` answers ``ok``, ``/conditions`` the conditions as JSON."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from healthcheck.agent.clock import rfc3339


def conditions_json(conditions, remediation=None) -> bytes:
    """The conditions as NPD's condition manager lists them (a JSON array); with
    ``remediation`` (a running controller) one more entry carries its state."""
    extra = []
    if remediation is not None:
        from healthcheck.agent.remediation.wiring import conditions_entry

        extra.append(conditions_entry(remediation.snapshot()))
    return json.dumps(
        [
            {
                "type": c.type,
                "status": c.status,
                "lastTransitionTime": rfc3339(c.transition),
                "reason": c.reason,
                "message": c.message,
            }
            for c in conditions
        ]
        + extra
    ).encode()


def serve(address: tuple[str, int], table, remediation=None) -> ThreadingHTTPServer:
    """Start the server on ``address`` in a daemon thread and return it."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "node-healthcheck"

        def do_GET(self) -> None:
            if self.path == "/healthz":
                body, kind = b"ok", "text/plain; charset=utf-8"
            elif self.path == "/conditions":
                body = conditions_json(table.snapshot()[1], remediation)
                kind = "application/json"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:
            pass  # access logs would drown the agent's own lines

    server = ThreadingHTTPServer(address, Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="server", daemon=True).start()
    return server
