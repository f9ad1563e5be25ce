"""A small, strict HTTP/1.1 client for node-local endpoints (healthz, Engine API, metadata).

The standard library's http.client imports the email package: ~19 ms on these machines, most of a
one-shot check's 25 ms budget (bench/coldstart.py). Node-local endpoints need little of HTTP, so
this client speaks exactly that much, and bounds everything:

- one overall deadline per request (connect, send, headers and body together);
- headers at most 64 KiB, body at most ``max_body`` bytes (default 1 MiB), else :class:`HttpError`;
  with ``keep`` only the body's first bytes are held (the rest is read and dropped);
- numbers (port, status code, Content-Length, chunk sizes) are ASCII digits of bounded length,
  anything else is malformed; what the server says reaches a message through
  :func:`healthcheck.sdk.text.one_line`;
- Content-Length, chunked and close-delimited bodies; keep-alive reuse through
  :class:`Connection` (the agent polls the same endpoint every few seconds);
- TCP (IPv4, IPv6 in brackets) or a unix socket (Docker, containerd-style endpoints).
"""

from __future__ import annotations

# _socket, not socket: socket.py builds its IntEnums and imports selectors at import time,
# +2.8 ms on a one-shot check here against +0.4 ms for _socket (measured interleaved, 60 runs).
import _socket
import time

from healthcheck.sdk.text import one_line

MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_BODY = 1 << 20
USER_AGENT = "node-healthcheck"


class HttpError(Exception):
    """The request did not produce a usable response; the message is one line for the user."""


class Response:
    """Status, lower-cased headers (last value wins) and the body bytes."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


def split_url(url: str) -> tuple[str, int, str]:
    """``http://host[:port]/path`` -> ``(host, port, path)``; IPv6 hosts come without brackets."""
    if not url.startswith("http://"):
        raise HttpError(f"unsupported URL {_shown(url)}: only http:// is supported")
    rest = url[len("http://") :]
    authority, slash, path = rest.partition("/")
    path = slash + path if slash else "/"
    if "?" in authority or "#" in authority:
        authority, _, tail = authority.partition("?")
        path = "/?" + tail
    if "@" in authority:
        raise HttpError(f"credentials in URLs are not supported: {_shown(url)}")
    port = 80
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        if after.startswith(":"):
            port = _port(after[1:], url)
        elif after:
            raise HttpError(f"malformed URL {_shown(url)}")
    else:
        host, colon, port_text = authority.partition(":")
        if colon:
            port = _port(port_text, url)
    if not host:
        raise HttpError(f"malformed URL {_shown(url)}: no host")
    return host, port, path


def _digits(text, most: int) -> bool:
    """``text`` (str or bytes) is 1 to ``most`` ASCII digits: ``str.isdigit`` alone takes
    "²" and "٣", which ``int()`` then refuses or reads as a number nobody wrote."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def _port(text: str, url: str) -> int:
    if not _digits(text, 5) or not 0 < int(text) < 65536:
        raise HttpError(f"malformed URL {_shown(url)}: bad port {_shown(text)}")
    return int(text)


def _shown(text: str) -> str:
    """Something the server or the user sent, quoted for an error message."""
    return f'"{one_line(text, 60, marker="…")}"'


class _Reader:
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

    def read_into(self, size: int, body: _Body) -> None:
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

    def read_to_close_into(self, limit: int, body: _Body) -> None:
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


class _Body:
    """A response body as it arrives: the first ``keep`` bytes are held, the rest only counted
    (a caller that needs the first byte of a 32 MiB listing does not hold 32 MiB)."""

    __slots__ = ("data", "keep", "size")

    def __init__(self, keep: int) -> None:
        self.data = bytearray()
        self.keep = keep
        self.size = 0

    def add(self, chunk) -> None:
        self.size += len(chunk)
        room = self.keep - len(self.data)
        if room > 0:
            self.data += chunk[:room]


def _parse_head(head: bytes) -> tuple[int, str, str, dict[str, str]]:
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _digits(parts[1], 3):
        raise HttpError(f"not an HTTP response: {_shown(lines[0])}")
    if len(parts[1]) != 3:
        raise HttpError(f"malformed status code in {_shown(lines[0])}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise HttpError(f"malformed response header {_shown(line)}")
        headers[name.strip().lower()] = value.strip()
    reason = one_line(parts[2], 200) if len(parts) > 2 else ""
    return int(parts[1]), reason, parts[0], headers


def _read_chunked(reader: _Reader, limit: int, body: _Body) -> None:
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


def _tcp_connect(host: str, port: int, timeout: float) -> _socket.socket:
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


class Connection:
    """A reusable connection to one endpoint (``host``/``port`` or a unix socket path).

    The socket is kept open between requests while the server allows keep-alive; a request on a
    socket the server has meanwhile closed is retried once on a fresh one.
    """

    def __init__(
        self,
        host: str = "localhost",
        port: int = 80,
        *,
        unix_socket: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.host = host
        self.port = port
        self.unix_socket = unix_socket
        self.max_body = max_body
        self._sock: _socket.socket | None = None
        self.connects = 0  # how many sockets were opened: lets tests and benches see reuse

    def _connect(self, deadline: float) -> _socket.socket:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HttpError("timed out connecting")
        where = self.unix_socket or f"{self.host}:{self.port}"
        try:
            if self.unix_socket:
                sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                sock.settimeout(remaining)
                try:
                    sock.connect(self.unix_socket)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = _tcp_connect(self.host, self.port, remaining)
        except TimeoutError:
            raise HttpError(f"timed out connecting to {where}") from None
        except OSError as exc:
            raise HttpError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        self.connects += 1
        return sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers=None,
        body: bytes | None = None,
        timeout: float = 5.0,
        keep: int | None = None,
    ) -> Response:
        """Send one request and read the whole response within ``timeout`` seconds.

        With ``keep``, only the first ``keep`` bytes of the body are kept in the response; the
        rest is still read (up to ``max_body``), so the connection stays usable.
        """
        deadline = time.monotonic() + timeout
        reused = self._sock is not None
        keep = self.max_body if keep is None else keep
        try:
            return self._exchange(method, path, headers, body, deadline, keep)
        except HttpError:
            self.close()
            if not reused or time.monotonic() >= deadline:
                raise
        except OSError:
            self.close()
            if not reused:
                raise
        # a stale keep-alive socket
        return self._exchange(method, path, headers, body, deadline, keep)

    def _exchange(self, method, path, headers, body, deadline, keep) -> Response:
        if any(c in method + path for c in " \r\n"):
            raise HttpError(
                f"refusing a request line with whitespace: {_shown(method)} {_shown(path)}"
            )
        if self._sock is None:
            self._sock = self._connect(deadline)
        sock = self._sock
        host_header = "localhost" if self.unix_socket else self.host
        if ":" in host_header:
            host_header = f"[{host_header}]"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {USER_AGENT}"]
        for name, value in (headers or {}).items():
            if any(c in f"{name}{value}" for c in "\r\n"):
                raise HttpError(f"refusing a header with a line break: {name}")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        try:
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            # A header value from outside (a token file, a config) that HTTP cannot carry.
            raise HttpError("refusing a request head that is not Latin-1") from None
        payload = head + (body or b"")
        try:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            sock.sendall(payload)
        except TimeoutError:
            raise HttpError("timed out sending the request") from None
        except OSError as exc:
            raise HttpError(f"connection failed: {exc.strerror or exc}") from None
        reader = _Reader(sock, deadline)
        try:
            status, reason, version, resp_headers = self._read_head(reader)
            keep_alive = (
                version == "HTTP/1.1" and "close" not in resp_headers.get("connection", "").lower()
            )
            received = _Body(keep)
            if method == "HEAD" or status in (204, 304):
                pass
            elif "chunked" in resp_headers.get("transfer-encoding", "").lower():
                _read_chunked(reader, self.max_body, received)
            elif "content-length" in resp_headers:
                length_text = resp_headers["content-length"]
                if not _digits(length_text, 19):
                    raise HttpError(f"malformed Content-Length {_shown(length_text)}")
                length = int(length_text)
                if length > self.max_body:
                    raise HttpError(f"response body larger than {self.max_body} bytes")
                reader.read_into(length, received)
            else:
                reader.read_to_close_into(self.max_body, received)
                keep_alive = False
        except OSError as exc:
            raise HttpError(f"connection failed: {exc.strerror or exc}") from None
        if not keep_alive or reader.buf:
            self.close()
        return Response(status, reason, resp_headers, bytes(received.data))

    def _read_head(self, reader: _Reader):
        while True:
            head = reader.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
            status, reason, version, headers = _parse_head(head[:-4])
            if not 100 <= status < 200:
                return status, reason, version, headers


def request(
    method: str,
    url: str,
    *,
    headers=None,
    body: bytes | None = None,
    timeout: float = 5.0,
    max_body: int = DEFAULT_MAX_BODY,
    unix_socket: str | None = None,
    keep: int | None = None,
) -> Response:
    """One request on a fresh connection. With ``unix_socket``, ``url`` may be a bare path.
    ``keep`` is :meth:`Connection.request`'s."""
    if unix_socket is not None:
        path = url if url.startswith("/") else split_url(url)[2]
        with Connection(unix_socket=unix_socket, max_body=max_body) as conn:
            return conn.request(
                method, path, headers=headers, body=body, timeout=timeout, keep=keep
            )
    host, port, path = split_url(url)
    with Connection(host, port, max_body=max_body) as conn:
        return conn.request(method, path, headers=headers, body=body, timeout=timeout, keep=keep)


def join_host_port(host: str, port: int | str) -> str:
    """``host:port`` with IPv6 hosts bracketed, as Go's net.JoinHostPort."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Go's http.Client follows these with a Location header. Its default CheckRedirect stops "after
# 10 redirects": the 10th response may not be a redirect again, so 9 are followed.
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
MAX_REQUESTS = 10


def probe_status(url: str, *, timeout: float, max_requests: int = MAX_REQUESTS) -> tuple[int, str]:
    """``GET url`` as NPD's health-checker does it with Go's ``http.Client``: the final status
    and reason, following redirects, without reading the body.

    Redirects are followed as Go's client follows them: 301, 302, 303, 307 and 308 carrying a
    ``Location`` (resolved against the current URL), in at most ``max_requests`` requests (a
    redirect in answer to the last is an error, Go's "stopped after 10 redirects"), all within
    one ``timeout``. Only ``http://`` targets are followed (this
    client speaks no TLS); any other scheme is an :class:`HttpError`, as a failed request is to
    Go. The body of the final response is never read, so a broken one does not matter: NPD
    looks only at the status code. Raises :class:`HttpError` when no status arrives.
    """
    deadline = time.monotonic() + timeout
    for _hop in range(max_requests):
        host, port, path = split_url(url)
        with Connection(host, port) as conn:
            status, reason, headers = _head_of_get(conn, path, deadline)
        location = headers.get("location")
        if status not in REDIRECT_STATUSES or location is None:
            return status, reason
        url = _resolve_location(url, location)
    raise HttpError(f"stopped after {max_requests} redirects")


def _resolve_location(base: str, location: str) -> str:
    """``location`` resolved against ``base`` (RFC 3986), refused unless it is ``http://``."""
    from urllib.parse import urljoin, urlsplit  # only a redirect pays for importing it

    if any(c in location for c in "\r\n\x00"):
        raise HttpError("malformed Location header")
    try:
        target = urljoin(base, location.strip())
        scheme = urlsplit(target).scheme.lower()
    except ValueError:
        raise HttpError(f"malformed redirect location {location[:80]!r}") from None
    if scheme != "http":
        raise HttpError(f"redirect to a {scheme or 'schemeless'} URL is not followed")
    return target.split("#", 1)[0]


def _head_of_get(conn: Connection, path: str, deadline: float) -> tuple[int, str, dict]:
    """Send ``GET path`` and read the response head only (status, reason, headers)."""
    if any(c in path for c in " \r\n"):
        raise HttpError(f"refusing a request line with whitespace: GET {path[:80]!r}")
    if conn._sock is None:
        conn._sock = conn._connect(deadline)
    host_header = f"[{conn.host}]" if ":" in conn.host else conn.host
    payload = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1", "replace")
    try:
        conn._sock.settimeout(max(0.001, deadline - time.monotonic()))
        conn._sock.sendall(payload)
        status, reason, headers = _go_read_head(_Reader(conn._sock, deadline))
    except TimeoutError:
        raise HttpError("timed out waiting for the response") from None
    except OSError as exc:
        raise HttpError(f"connection failed: {exc.strerror or exc}") from None
    return status, reason, headers


def _go_read_head(reader: _Reader) -> tuple[int, str, dict]:
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
    digits = code[1:] if code[:1] == "+" else code
    if len(code) != 3 or not digits.isascii() or not digits.isdigit():
        raise HttpError(f"malformed HTTP status code {code[:20]!r}")
    if not (
        len(version) == 8
        and version.startswith("HTTP/")
        and version[5] in "0123456789"
        and version[6] == "."
        and version[7] in "0123456789"
    ):
        raise HttpError(f"malformed HTTP version {version[:20]!r}")
    return int(digits), reason
