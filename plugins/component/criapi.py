"""The CRI RuntimeService over its gRPC unix socket: Version, Status and ListPodSandbox.

The three requests and the few response fields read here are tiny, so they are encoded and
decoded by hand (protobuf wire format: varints and length-delimited fields) instead of loading
generated stubs of the whole CRI ``api.proto`` or building message classes through
``google.protobuf``'s descriptor pool at every run. The calls go over
:mod:`.grpcunary` (gRPC's HTTP/2 mapping on h2; why not grpcio is said there).
Only the cri checker imports this module, and the transport is imported when a client is made,
so nothing else pays for it.

Field numbers are those of ``k8s.io/cri-api/pkg/apis/runtime/v1/api.proto``.
"""

from __future__ import annotations

from healthcheck.sdk.text import short_repr

SERVICE = "/runtime.v1.RuntimeService/"
MAX_MESSAGE = 16 << 20  # a node with thousands of sandboxes still fits; beyond is an error


class CriError(Exception):
    """A CRI call failed; ``code`` is the gRPC status name (``UNAVAILABLE``, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


# ------------------------------------------------------------------------------- wire format


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_field(number: int, value) -> bytes:
    """One field: ``bool``/``int`` as a varint, ``str``/``bytes`` length-delimited."""
    if isinstance(value, (bool, int)):
        return _varint(number << 3) + _varint(int(value))
    data = value.encode() if isinstance(value, str) else bytes(value)
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """``(field number, value)`` pairs of one message; varints as int, the rest as bytes."""
    fields = []
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 2:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated fixed-size field")
        fields.append((number, value))
    return fields


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------------- messages


class RuntimeCondition:
    """``RuntimeCondition``: type, status, reason, message."""

    __slots__ = ("message", "reason", "status", "type")

    def __init__(self, type: str, status: bool, reason: str = "", message: str = "") -> None:
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"RuntimeCondition({self.type}={self.status}, {self.reason!r})"


def decode_version(data: bytes) -> dict[str, str]:
    """``VersionResponse`` as a dict (version, runtime name/version, runtime API version)."""
    names = {1: "version", 2: "runtime_name", 3: "runtime_version", 4: "runtime_api_version"}
    return {names[n]: _text(v) for n, v in decode_fields(data) if n in names}


def decode_status(data: bytes) -> list[RuntimeCondition]:
    """The conditions of a ``StatusResponse`` (``status.conditions``)."""
    conditions = []
    for number, status in decode_fields(data):
        if number != 1 or not isinstance(status, bytes):
            continue
        for cnumber, cond in decode_fields(status):
            if cnumber != 1 or not isinstance(cond, bytes):
                continue
            values = {1: "", 2: 0, 3: "", 4: ""}
            for fnumber, value in decode_fields(cond):
                if fnumber in values:
                    values[fnumber] = value
            conditions.append(
                RuntimeCondition(
                    _text(values[1]), bool(values[2]), _text(values[3]), _text(values[4])
                )
            )
    return conditions


def decode_sandboxes(data: bytes) -> list[dict]:
    """``ListPodSandboxResponse.items`` as dicts with id, state (0 ready) and created_at (ns)."""
    items = []
    for number, item in decode_fields(data):
        if number != 1 or not isinstance(item, bytes):
            continue
        sandbox = {"id": "", "state": 0, "created_at": 0}
        for fnumber, value in decode_fields(item):
            if fnumber == 1:
                sandbox["id"] = _text(value)
            elif fnumber == 3 and isinstance(value, int):
                sandbox["state"] = value
            elif fnumber == 4 and isinstance(value, int):
                sandbox["created_at"] = value
        items.append(sandbox)
    return items


# ------------------------------------------------------------------------------------- client


def socket_path(endpoint: str) -> str:
    """The socket path of ``unix:///path`` or a bare ``/path``; other schemes are rejected."""
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://") :]
    elif endpoint.startswith("/"):
        path = endpoint
    else:
        raise ValueError(
            f"unsupported CRI endpoint {short_repr(endpoint, 100)}: use unix:///path/to/socket"
        )
    if not path.startswith("/") or "\0" in path:
        raise ValueError(
            f"unsupported CRI endpoint {short_repr(endpoint, 100)}: use unix:///path/to/socket"
        )
    return path


class RuntimeClient:
    """A RuntimeService client on one connection; every call has its own timeout."""

    def __init__(self, endpoint: str) -> None:
        # Here, not at the top: h2 (~30 ms to import) is only needed for a call; validating the
        # endpoint (socket_path) and a cri check with --use-crictl never pay for it.
        from healthcheck_plugins.component.grpcunary import UnixChannel

        self.channel = UnixChannel(socket_path(endpoint), max_message=MAX_MESSAGE)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> RuntimeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def call(self, method: str, request: bytes, timeout: float) -> bytes:
        """One RuntimeService method with a serialized request; raises :class:`CriError`."""
        # Loaded already by __init__; imported here for the same reason as there.
        from healthcheck_plugins.component.grpcunary import GrpcError

        try:
            return self.channel.unary(SERVICE + method, request, timeout)
        except GrpcError as exc:
            raise CriError(exc.code, exc.message) from None

    def version(self, timeout: float) -> dict[str, str]:
        return decode_version(self.call("Version", encode_field(1, "v1"), timeout))

    def status(self, timeout: float) -> list[RuntimeCondition]:
        return decode_status(self.call("Status", b"", timeout))

    def list_pod_sandboxes(self, timeout: float) -> list[dict]:
        return decode_sandboxes(self.call("ListPodSandbox", b"", timeout))
