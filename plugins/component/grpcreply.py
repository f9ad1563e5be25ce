"""gRPC's side of one unary reply: status names, the HTTP and reset mappings, the reply itself.

From gRPC's HTTP/2 mapping (``doc/PROTOCOL-HTTP2.md`` and ``doc/http-grpc-status-mapping.md`` in
grpc/grpc): the status comes from ``grpc-status`` / ``grpc-message`` in the trailers (or in the
headers of a trailers-only reply), the message is one length-prefixed frame. Failures raise
:class:`GrpcError` with gRPC's status names, so callers see what a grpcio client would.
"""

from __future__ import annotations

import math

from healthcheck.sdk.text import one_line

STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
# gRPC's mapping for replies that are not HTTP 200 and carry no grpc-status
# (doc/http-grpc-status-mapping.md).
HTTP_STATUS_CODES = {
    400: "INTERNAL",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "UNIMPLEMENTED",
    429: "UNAVAILABLE",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "UNAVAILABLE",
}
# RST_STREAM codes as grpc-go maps them; anything else is INTERNAL.
RESET_CODES = {7: "UNAVAILABLE", 8: "CANCELLED", 11: "RESOURCE_EXHAUSTED", 12: "PERMISSION_DENIED"}
MAX_TEXT = 200  # bytes of anything the server sent that end up in a message


class GrpcError(Exception):
    """A failed call; ``code`` is the gRPC status name (``UNAVAILABLE``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


def timeout_header(seconds: float) -> str:
    """``grpc-timeout``: at most 8 digits and a unit, rounded up so it never undercuts."""
    millis = max(1, math.ceil(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{min(math.ceil(seconds), 10**8 - 1)}S"


def _status_name(value: str) -> str:
    if not (value.isascii() and value.isdigit() and len(value) <= 2):
        return "UNKNOWN"
    code = int(value)
    return STATUS_NAMES[code] if code < len(STATUS_NAMES) else "UNKNOWN"


def _message(value: str) -> str:
    if "%" in value:
        # Here, not at the top: urllib.parse and what it imports cost milliseconds, and only
        # a percent-encoded grpc-message (an error reply) needs it.
        from urllib.parse import unquote

        value = unquote(value, errors="replace")
    return one_line(value, MAX_TEXT)


def _http_status_code(value: str) -> str:
    if len(value) == 3 and value.isascii() and value.isdigit():
        return HTTP_STATUS_CODES.get(int(value), "UNKNOWN")
    return "UNKNOWN"


class Reply:
    """What one stream brought back: headers, body bytes, trailers, and how it ended."""

    __slots__ = ("body", "ended", "headers", "trailers")

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.trailers: dict[str, str] = {}
        self.body = bytearray()
        self.ended = False

    def result(self, max_message: int) -> bytes:
        """The reply's one message, or :class:`GrpcError` as a grpcio client would raise."""
        status = self.trailers.get("grpc-status", self.headers.get("grpc-status"))
        http_status = self.headers.get(":status", "")
        if status is None:
            if http_status != "200":
                shown = one_line(http_status, 20) or "missing"
                raise GrpcError(_http_status_code(http_status), f"unexpected HTTP status {shown}")
            raise GrpcError("INTERNAL", "server closed the stream without sending trailers")
        code = _status_name(status)
        if code != "OK":
            message = self.trailers.get("grpc-message", self.headers.get("grpc-message", ""))
            raise GrpcError(code, _message(message))
        if not self.headers.get("content-type", "").startswith("application/grpc"):
            raise GrpcError("INTERNAL", "reply content-type is not application/grpc")
        body = self.body
        if len(body) < 5:
            raise GrpcError("INTERNAL", "reply carries no message")
        if body[0] != 0:
            raise GrpcError("INTERNAL", "compressed reply although no encoding was offered")
        size = int.from_bytes(body[1:5], "big")
        if size > max_message:
            raise GrpcError("RESOURCE_EXHAUSTED", f"reply of {size} bytes > {max_message}")
        if len(body) != 5 + size:
            raise GrpcError("INTERNAL", "reply is not exactly one length-prefixed message")
        with memoryview(body) as view:  # one copy of a reply that may be megabytes, not two
            return bytes(view[5:])
