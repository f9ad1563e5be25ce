"""A TEST DOUBLE of the Kubernetes API server, kept only for faults the real one cannot be made
to produce on demand: a chosen status (5xx, 409) or a 429 with ``Retry-After`` on the very next
request, a stalled answer, one event refused with 422. It also records the raw request bodies,
so tests check the wire format. Everything else the agent does is tested against the real
kube-apiserver (tests/envtest.py; the ``kube`` fixture runs a test against both).

It is a real HTTP server on loopback that implements exactly, and only, what the agent uses,
following the real API's paths, verbs, content types, status codes and ``Status`` bodies:

- ``GET /api/v1/nodes/<name>`` -> 200 Node, 404 NotFound;
- ``PATCH /api/v1/nodes/<name>/status`` with ``application/strategic-merge-patch+json``:
  ``status.conditions`` merge by ``type`` (the patch strategy of NodeStatus.conditions), other
  status keys replace; 415 UnsupportedMediaType for any other patch type, 400 for bad JSON;
- ``POST /api/v1/namespaces/<ns>/events`` -> 201 Event; 409 AlreadyExists for a taken name;
  422 Invalid without ``metadata.name`` or ``involvedObject``;
- ``PATCH /api/v1/namespaces/<ns>/events/<name>`` (strategic merge: top-level keys replace)
  -> 200, 404 NotFound;
- any other path 404, any other verb 405 MethodNotAllowed.

Faults for the next requests: an HTTP status (5xx, 409, 429 with ``Retry-After``), a hang (the
request is held until released or the client gives up), and ``go_down()``/``come_back()``,
which close and reopen the listening socket on the same port (connection refused meanwhile).
Every request is recorded with its arrival time.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STRATEGIC = "application/strategic-merge-patch+json"
REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_body(code: int, message: str, reason: str | None = None) -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, "Unknown"),
        "code": code,
    }


class Request:
    __slots__ = ("at", "body", "content_type", "method", "path", "wall")

    def __init__(self, method, path, content_type, body, at) -> None:
        self.wall = time.time()
        self.method = method
        self.path = path
        self.content_type = content_type
        self.body = body
        self.at = at

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path})"


class ApiServerDouble:
    """See the module docstring. ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, port: int = 0) -> None:
        self.nodes: dict[str, dict] = {}
        self.events: dict[tuple[str, str], dict] = {}
        self.requests: list[Request] = []
        self.faults: list[tuple] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.connections: set = set()
        self._version = 1
        self._server = None
        self.port = port
        self._start()

    # ---------------------------------------------------------------- control
    def _start(self) -> None:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with double.lock:
                    double.connections.add(self.connection)

            def finish(self) -> None:
                with double.lock:
                    double.connections.discard(self.connection)
                super().finish()

            def _handle(self) -> None:
                double._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def go_down(self) -> None:
        """Stop listening and drop kept-alive connections: the agent sees connection refused."""
        import socket

        self._server.shutdown()
        self._server.server_close()
        with self.lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def come_back(self) -> None:
        self._start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def add_node(self, name: str, conditions=(), uid: str = "uid-1") -> None:
        with self.lock:
            self.nodes[name] = {
                "kind": "Node",
                "apiVersion": "v1",
                "metadata": {"name": name, "uid": uid, "resourceVersion": str(self._version)},
                "status": {"conditions": [dict(c) for c in conditions]},
            }

    def inject(self, *faults) -> None:
        """Queue faults for the next requests: ``(code,)``, ``(429, secs)``, ``("hang",)``,
        ``("raw", code, bytes)`` (a reply body the real server never sends)."""
        with self.lock:
            self.faults.extend(faults)

    def writes(self, since: float = 0.0) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method != "GET" and r.at >= since]

    def conditions(self, node: str) -> dict[str, dict]:
        with self.lock:
            return {c["type"]: dict(c) for c in self.nodes[node]["status"].get("conditions", [])}

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if predicate(self):
                    return True
            time.sleep(0.02)
        return False

    # --------------------------------------------------------------- handling
    def _send(self, handler, code: int, body: dict, headers=()) -> None:
        data = json.dumps(body).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _dispatch(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        method, path = handler.command, handler.path.split("?", 1)[0]
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        with self.lock:
            self.requests.append(Request(method, path, content_type, raw, time.monotonic()))
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            if fault[0] == "hang":
                self.release.wait(fault[1] if len(fault) > 1 else 30)
                handler.close_connection = True
                return
            if fault[0] == "raw":
                _, code, data = fault
                handler.send_response(code)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(data)))
                handler.end_headers()
                handler.wfile.write(data)
                return
            code = fault[0]
            headers = [("Retry-After", str(fault[1]))] if code == 429 and len(fault) > 1 else []
            self._send(handler, code, status_body(code, f"injected {code}"), headers)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            self._send(handler, 400, status_body(400, "invalid JSON body"))
            return
        with self.lock:
            code, reply = self._route(method, path, content_type, body)
        self._send(handler, code, reply)

    def _route(self, method, path, content_type, body):
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "nodes"] and len(parts) in (4, 5):
            node = self.nodes.get(parts[3])
            if len(parts) == 4:
                if method != "GET":
                    return 405, status_body(405, f"{method} not allowed")
                if node is None:
                    return 404, status_body(404, f'nodes "{parts[3]}" not found')
                return 200, node
            if parts[4] != "status":
                return 404, status_body(404, "not found")
            if method != "PATCH":
                return 405, status_body(405, f"{method} not allowed")
            if content_type != STRATEGIC:
                return 415, status_body(
                    415,
                    "the body of the request was in an unknown format - "
                    f"accepted media types include: {STRATEGIC}",
                )
            if node is None:
                return 404, status_body(404, f'nodes "{parts[3]}" not found')
            if not isinstance(body, dict):
                return 400, status_body(400, "patch body must be an object")
            status = body.get("status", {})
            for key, value in status.items():
                if key != "conditions":
                    node["status"][key] = value
                    continue
                merged = {c["type"]: c for c in node["status"].get("conditions", [])}
                for cond in value:
                    if "type" not in cond:
                        return 422, status_body(422, "conditions[].type: Required value")
                    merged[cond["type"]] = {**merged.get(cond["type"], {}), **cond}
                node["status"]["conditions"] = list(merged.values())
            self._version += 1
            node["metadata"]["resourceVersion"] = str(self._version)
            return 200, node
        if (
            parts[:3] == ["api", "v1", "namespaces"]
            and len(parts) in (5, 6)
            and parts[4] == "events"
        ):
            ns = parts[3]
            if len(parts) == 5:
                if method != "POST":
                    return 405, status_body(405, f"{method} not allowed")
                meta = (body or {}).get("metadata") or {}
                if not meta.get("name") or not (body or {}).get("involvedObject"):
                    return 422, status_body(422, "metadata.name and involvedObject are required")
                if (ns, meta["name"]) in self.events:
                    return 409, status_body(
                        409, f'events "{meta["name"]}" already exists', "AlreadyExists"
                    )
                self.events[(ns, meta["name"])] = body
                return 201, body
            if method != "PATCH":
                return 405, status_body(405, f"{method} not allowed")
            if content_type != STRATEGIC:
                return 415, status_body(415, "unsupported patch type")
            event = self.events.get((ns, parts[5]))
            if event is None:
                return 404, status_body(404, f'events "{parts[5]}" not found')
            event.update(body or {})
            return 200, event
        return 404, status_body(404, "the server could not find the requested resource")


def write_kubeconfig(path, url: str) -> str:
    """A kubeconfig pointing at ``url`` with a bearer token, as a test writes one."""
    import yaml

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "double", "cluster": {"server": url}}],
        "users": [{"name": "agent", "user": {"token": "test-token"}}],
        "contexts": [{"name": "double", "context": {"cluster": "double", "user": "agent"}}],
        "current-context": "double",
    }
    with open(path, "w") as fh:
        yaml.safe_dump(config, fh)
    return str(path)
