"""What Go's ``url.Parse`` says about the host and port of NPD's probe URL.

NPD builds its probe URL from ``HOST_ADDRESS`` and the port variable and reports a URL Go cannot
parse as an error (exit 2, with Go's words); a parseable one that cannot be dialled is unhealthy.
"""

from __future__ import annotations

# Characters Go's url package accepts unescaped in a host (url.shouldEscape, encodeHost).
_HOST_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"%"
)


def _quote(text: str) -> str:
    """Go's ``%q`` (:func:`healthcheck.sdk.pflag.go_quote`)."""
    # Here, not at the top: pflag costs ~2.5 ms to import, and only an error message needs it
    # (every kubelet and kube-proxy probe checks its URL).
    from healthcheck.sdk.pflag import go_quote

    return go_quote(text)


def go_url_error(url: str) -> str | None:
    """What Go's ``url.Parse`` says about the host and port of ``url``; None if it takes them."""
    why = _go_host_error(url)
    return None if why is None else f"parse {_quote(url)}: {why}"


def _go_host_error(url: str) -> str | None:
    if any(c < " " or c == "\x7f" for c in url):
        return "net/url: invalid control character in URL"
    rest = url.split("#", 1)[0].split("?", 1)[0][len("http://") :]
    host = rest.split("/", 1)[0].rpartition("@")[2]
    if host.startswith("["):
        return _go_ip_literal_error(host)
    colon = host.find(":")
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        return f"invalid port {_quote(host[colon:])} after host"
    bad = next((c for c in host if c.isascii() and c not in _HOST_CHARS), None)
    if bad is not None:
        return f"invalid character {_quote(bad)} in host name"
    return _escape_error(host)


def _go_ip_literal_error(host: str) -> str | None:
    """A bracketed host: ``[IPv6 literal%zone]:port``."""
    end = host.rfind("]")
    if end < 0:
        return "missing ']' in host"
    if not _valid_optional_port(host[end + 1 :]):
        return f"invalid port {_quote(host[end + 1 :])} after host"
    literal, _, zone = host[1:end].partition("%25")
    if "%" in literal:
        zone, literal = literal.partition("%")[2], literal.partition("%")[0]
        bad = _escape_error("%" + zone)
        if bad:
            return bad
    if "[" in literal or "]" in literal:
        return "invalid IP-literal"
    # Here, not at the top: only a bracketed IPv6 HOST_ADDRESS needs ipaddress (~1 ms).
    import ipaddress

    try:
        ipaddress.IPv6Address(literal)
    except ValueError as exc:
        return f"invalid host: ParseAddr({_quote(literal)}): {exc}"
    return None


def _escape_error(host: str) -> str | None:
    """Go's ``unescape(host, encodeHost)``: ``%XX`` only for non-ASCII bytes, or ``%25``."""
    hexdigits = "0123456789abcdefABCDEF"
    i = host.find("%")
    while i >= 0:
        code = host[i + 1 : i + 3]
        if i + 2 >= len(host) or len(code) < 2 or any(c not in hexdigits for c in code):
            return f"invalid URL escape {_quote(host[i : i + 3])}"
        if int(code[0], 16) < 8 and code != "25":
            return f"invalid URL escape {_quote(host[i : i + 3])}"
        i = host.find("%", i + 3)
    return None


def _valid_optional_port(port: str) -> bool:
    """Go's ``validOptionalPort``: empty, or a colon and ASCII digits."""
    if not port:
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])
