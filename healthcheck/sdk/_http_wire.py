"""The wire level of :mod:`healthcheck.sdk.http`: sockets, bounded reads, response heads, bodies.

Private: the documented client is :mod:`healthcheck.sdk.http` (see ``docs/sdk.md``). Everything
here reads against one deadline and one size bound, and every number it parses is ASCII digits of
bounded length.
"""

from __future__ import annotations

# _socket, not socket: socket.py builds its IntEnums and imports selectors at import time,
# +2.8 ms on a one-shot check here against +0.4 ms for _socket (measured interleaved, 60 runs).
import _socket
import time

from healthcheck.sdk.text import one_line

MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """The request did not produce a usable response; the message is one line for the user."""


# Raised from here, documented and imported as healthcheck.sdk.http.HttpError.
HttpError.__module__ = "healthcheck.sdk.http"


def digits(text: str | bytes, most: int) -> bool:
    """``text`` (str or bytes) is 1 to ``most`` ASCII digits: ``str.isdigit`` alone takes
    "²" and "٣", which ``int()`` then refuses or reads as a number nobody wrote."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def shown(text: str) -> str:
    """Something the server or the user sent, quoted for an error message."""
    return f'"{one_line(text, 60, marker="…")}"'


class Body:
    """A response body as it arrives: the first ``keep`` bytes are held, the rest only counted
    (a caller that needs the first byte of a 32 MiB listing does not hold 32 MiB)."""

    __slots__ = ("data", "keep", "size")

    def __init__(self, keep: int) -> None:
        self.data = bytearray()
        self.keep = keep
        self.size = 0

    def add(self, chunk: bytes | bytearray) -> None:
        self.size += len(chunk)
        room = self.keep - len(self.data)
        if room > 0:
            self.data += chunk[:room]


class Reader:
    """Buffered reads from a socket against one deadline."""

    def __init__(self, sock: _socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise HttpError("timed out reading the response")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise HttpError("timed out reading the response") from None
        if not chunk:
            self.eof = True
        self.buf += chunk

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            index = self.buf.find(marker)
            if index >= 0:
                data = bytes(self.buf[: index + len(marker)])
                del self.buf[: index + len(marker)]
                return data
            if len(self.buf) > limit:
                raise HttpError(f"response headers larger than {limit} bytes")
            if self.eof:
                raise HttpError("connection closed before the response was complete")
            self._fill()

    def read_into(self, size: int, body: Body) -> None:
        """Exactly ``size`` bytes into ``body``, a buffer's worth at a time."""
        while size > 0:
            if not self.buf:
                if self.eof:
                    raise HttpError("connection closed before the response body was complete")
                self._fill()
                continue
            take = min(size, len(self.buf))
            body.add(self.buf[:take])
            del self.buf[:take]
            size -= take

    def read_to_close_into(self, limit: int, body: Body) -> None:
        """Everything up to the server's close into ``body``, at most ``limit`` bytes."""
        while True:
            if self.buf:
                body.add(self.buf)
                self.buf.clear()
            if body.size > limit:
                raise HttpError(f"response body larger than {limit} bytes")
            if self.eof:
                return
            self._fill()

    def read_exact(self, size: int) -> bytes:
        while len(self.buf) < size:
            if self.eof:
                raise HttpError("connection closed before the response body was complete")
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data


def parse_head(head: bytes) -> tuple[int, str, str, dict[str, str]]:
    """A response head (without its blank line): status, reason, version, lower-cased headers."""
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not digits(parts[1], 3):
        raise HttpError(f"not an HTTP response: {shown(lines[0])}")
    if len(parts[1]) != 3:
        raise HttpError(f"malformed status code in {shown(lines[0])}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(f"malformed response header {shown(line)}")
        headers[name.strip().lower()] = value.strip()
    reason = one_line(parts[2], 200) if len(parts) > 2 else ""
    return int(parts[1]), reason, parts[0], headers


def read_chunked(reader: Reader, limit: int, body: Body) -> None:
    """A chunked body into ``body``, at most ``limit`` bytes; trailers are read and dropped."""
    while True:
        line = reader.read_until(b"\r\n", 1024)
        size_text = line.split(b";", 1)[0].strip()
        # Hex digits only: int(..., 16) would also take a sign, blanks and underscores.
        if not 0 < len(size_text) <= 16 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpError("malformed chunked response body")
        size = int(size_text, 16)
        if size == 0:
            while reader.read_until(b"\r\n", MAX_HEADER_BYTES) != b"\r\n":
                pass  # trailers
            return
        if body.size + size > limit:
            raise HttpError(f"response body larger than {limit} bytes")
        reader.read_into(size, body)
        if reader.read_exact(2) != b"\r\n":
            raise HttpError("malformed chunked response body")


def tcp_connect(host: str, port: int, timeout: float) -> _socket.socket:
    """socket.create_connection's loop over the resolved addresses, on ``_socket``."""
    # An ASCII host as bytes: getaddrinfo would otherwise encode a str host with the idna
    # codec, whose import (encodings.idna, stringprep, unicodedata) costs ~0.6 ms.
    name = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _, address in _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM):
        sock = _socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


def go_read_head(reader: Reader) -> tuple[int, str, dict[str, str]]:
    """A response head read as Go's net/http reads one: lines end in LF or CRLF, the status
    code is exactly three digits, the version ``HTTP/x.y``, every header line has a colon, and
    up to five 1xx responses (but 101) are skipped. Raises :class:`HttpError` where Go errs."""
    for _ in range(6):
        budget = MAX_HEADER_BYTES
        lines: list[bytes] = []
        while True:
            line = reader.read_until(b"\n", budget)
            budget -= len(line)
            if budget < 0:
                raise HttpError(f"response headers larger than {MAX_HEADER_BYTES} bytes")
            line = line[:-1].removesuffix(b"\r")
            if not line:
                break
            lines.append(line)
        if not lines:
            raise HttpError("malformed HTTP response: empty status line")
        status, reason = _go_status_line(lines[0].decode("latin-1"))
        headers: dict[str, str] = {}
        for raw in lines[1:]:
            name, colon, value = raw.decode("latin-1").partition(":")
            if not colon or not name or name != name.strip():
                raise HttpError(f"malformed MIME header line: {raw[:60]!r}")
            headers[name.lower()] = value.strip(" \t")
        if not 100 <= status < 200 or status == 101:
            return status, reason, headers
    raise HttpError("too many 1xx informational responses")


def _go_status_line(line: str) -> tuple[int, str]:
    """``HTTP/1.1 200 OK`` -> (200, "OK"), with Go's checks of the version and the code."""
    version, space, rest = line.partition(" ")
    if not space:
        raise HttpError(f"malformed HTTP response {line[:60]!r}")
    code, _, reason = rest.lstrip(" ").partition(" ")
    number = code[1:] if code[:1] == "+" else code
    if len(code) != 3 or not number.isascii() or not number.isdigit():
        raise HttpError(f"malformed HTTP status code {code[:20]!r}")
    if not (
        len(version) == 8
        and version.startswith("HTTP/")
        and version[5] in "0123456789"
        and version[6] == "."
        and version[7] in "0123456789"
    ):
        raise HttpError(f"malformed HTTP version {version[:20]!r}")
    return int(number), reason
