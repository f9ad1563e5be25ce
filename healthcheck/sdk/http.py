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

Documented in ``docs/sdk.md``; the wire level (socket reads, heads, bodies) is in the private
:mod:`healthcheck.sdk._http_wire`.
"""

from __future__ import annotations

import _socket
import time

from healthcheck.sdk._http_wire import (
    MAX_HEADER_BYTES,
    Body,
    HttpError,
    Reader,
    digits,
    go_read_head,
    parse_head,
    read_chunked,
    shown,
    tcp_connect,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs a one-shot check ~2 ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

__all__ = [
    "DEFAULT_MAX_BODY",
    "MAX_HEADER_BYTES",
    "MAX_REQUESTS",
    "Connection",
    "HttpError",
    "Response",
    "join_host_port",
    "probe_status",
    "request",
    "split_url",
]

DEFAULT_MAX_BODY = 1 << 20
_USER_AGENT = "node-healthcheck"


class Response:
    """Status, lower-cased headers (last value wins) and the body bytes."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def text(self) -> str:
        """The body decoded as UTF-8, undecodable bytes replaced."""
        return self.body.decode("utf-8", "replace")

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes)"


def split_url(url: str) -> tuple[str, int, str]:
    """``http://host[:port]/path`` -> ``(host, port, path)``; IPv6 hosts come without brackets."""
    if not url.startswith("http://"):
        raise HttpError(f"unsupported URL {shown(url)}: only http:// is supported")
    rest = url[len("http://") :]
    authority, slash, path = rest.partition("/")
    path = slash + path if slash else "/"
    if "?" in authority or "#" in authority:
        authority, _, tail = authority.partition("?")
        path = "/?" + tail
    if "@" in authority:
        raise HttpError(f"credentials in URLs are not supported: {shown(url)}")
    port = 80
    if authority.startswith("["):
        host, _, after = authority[1:].partition("]")
        if after.startswith(":"):
            port = _port(after[1:], url)
        elif after:
            raise HttpError(f"malformed URL {shown(url)}")
    else:
        host, colon, port_text = authority.partition(":")
        if colon:
            port = _port(port_text, url)
    if not host:
        raise HttpError(f"malformed URL {shown(url)}: no host")
    return host, port, path


def _port(text: str, url: str) -> int:
    if not digits(text, 5) or not 0 < int(text) < 65536:
        raise HttpError(f"malformed URL {shown(url)}: bad port {shown(text)}")
    return int(text)


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
                sock = tcp_connect(self.host, self.port, remaining)
        except TimeoutError:
            raise HttpError(f"timed out connecting to {where}") from None
        except OSError as exc:
            raise HttpError(f"cannot connect to {where}: {exc.strerror or exc}") from None
        self.connects += 1
        return sock

    def close(self) -> None:
        """Close the kept socket, if any; the next request opens a new one."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
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

    def _exchange(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        deadline: float,
        keep: int,
    ) -> Response:
        if any(c in method + path for c in " \r\n"):
            raise HttpError(
                f"refusing a request line with whitespace: {shown(method)} {shown(path)}"
            )
        if self._sock is None:
            self._sock = self._connect(deadline)
        sock = self._sock
        host_header = "localhost" if self.unix_socket else self.host
        if ":" in host_header:
            host_header = f"[{host_header}]"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", f"User-Agent: {_USER_AGENT}"]
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
        reader = Reader(sock, deadline)
        try:
            status, reason, version, resp_headers = self._read_head(reader)
            keep_alive = (
                version == "HTTP/1.1" and "close" not in resp_headers.get("connection", "").lower()
            )
            received = Body(keep)
            if method == "HEAD" or status in (204, 304):
                pass
            elif "chunked" in resp_headers.get("transfer-encoding", "").lower():
                read_chunked(reader, self.max_body, received)
            elif "content-length" in resp_headers:
                length_text = resp_headers["content-length"]
                if not digits(length_text, 19):
                    raise HttpError(f"malformed Content-Length {shown(length_text)}")
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

    def _read_head(self, reader: Reader) -> tuple[int, str, str, dict[str, str]]:
        while True:
            head = reader.read_until(b"\r\n\r\n", MAX_HEADER_BYTES)
            status, reason, version, headers = parse_head(head[:-4])
            if not 100 <= status < 200:
                return status, reason, version, headers


def request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
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
_REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
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
        if status not in _REDIRECT_STATUSES or location is None:
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


def _head_of_get(conn: Connection, path: str, deadline: float) -> tuple[int, str, dict[str, str]]:
    """Send ``GET path`` and read the response head only (status, reason, headers)."""
    if any(c in path for c in " \r\n"):
        raise HttpError(f"refusing a request line with whitespace: GET {path[:80]!r}")
    if conn._sock is None:
        conn._sock = conn._connect(deadline)
    sock = conn._sock
    host_header = f"[{conn.host}]" if ":" in conn.host else conn.host
    payload = (
        f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {_USER_AGENT}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1", "replace")
    try:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        sock.sendall(payload)
        status, reason, headers = go_read_head(Reader(sock, deadline))
    except TimeoutError:
        raise HttpError("timed out waiting for the response") from None
    except OSError as exc:
        raise HttpError(f"connection failed: {exc.strerror or exc}") from None
    return status, reason, headers
