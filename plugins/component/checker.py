"""What the component checkers (kubelet, kube-proxy, docker, cri) share: NPD's health-checker.

A component checker is a *probe* (is the component answering?) wrapped in NPD's CheckHealth
(spec section 3): the probe, then the log-pattern check on every run, then NPD's output line.
The repair (``systemctl kill --kill-who=main``) is declared here and run by the runner through
:mod:`healthcheck.sdk.repair`'s shared policy. The plugins in ``healthcheck_plugins`` only add
their probe, their options and their NPD declaration.
"""

from __future__ import annotations

import os
import sys

from healthcheck._declaration import Checker, Condition, NpdMonitor, NpdRule, Option
from healthcheck._protocol import Result
from healthcheck.sdk.repair import REPAIR_OPTIONS, Repair
from healthcheck.sdk.systemd import unit_option

# NPD's health-checker configs: every 10 s, killed after 3 min (spec 2.10).
NPD_INTERVAL = 10.0
NPD_TIMEOUT = 180.0
# Our own deadline fires first so that NPD gets our line, not its own timeout text.
CHECK_DEADLINE = 170.0


class ComponentError(Exception):
    """The health could not be determined (exit 2, ``error checking <component> health: ...``)."""


# ------------------------------------------------------------------------------ log patterns


def _go_list(parts: list[str]) -> str:
    return "[" + " ".join(parts) + "]"  # how Go's %v prints a []string


def _go_atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` (base 10, 64 bits): ``+3`` is 3; ``0x2``, ``1_0``, ``٣`` and
    values past int64 are errors, worded as Go words them."""
    from healthcheck.sdk.pflag import go_parse_int

    try:
        return go_parse_int(text, 10, 64)
    except ValueError as exc:
        raise ValueError(str(exc).replace("strconv.ParseInt:", "strconv.Atoi:", 1)) from None


def compile_pattern(pattern: str, *, per_line: bool = False):
    """``pattern`` compiled with RE2, case-insensitive as NPD's ``grep -i``; ValueError if bad.

    ``per_line`` compiles, for UTF-8 text of messages joined by newlines, a search that finds
    at most one match per line: ``(?m:^)[^\\n]*?(?:pattern)``. It is only equivalent for
    patterns :func:`batchable` accepts.
    """
    import re2

    from healthcheck.sdk.pflag import go_quote
    from healthcheck_plugins.log_counter.logbuffer import go_syntax_error, group

    error = go_syntax_error(pattern)  # Go's rules and words, as NPD's regexps have elsewhere
    if error is not None:
        raise ValueError(f"invalid regular expression {go_quote(pattern)}: {error}")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    try:
        regex = re2.compile(pattern, options)
        if per_line:
            # Compiled alone first, so that the wrapper cannot turn a broken pattern valid.
            regex = re2.compile(f"(?m:^)[^\\n]*?{group(pattern)}".encode(), options)
        return regex
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression {go_quote(pattern)}: {reason}") from None


def batchable(pattern: str) -> bool:
    """True when whether ``pattern`` is found in a one-line message does not depend on the
    text around it: it never matches a newline and has no beginning or end anchors."""
    from healthcheck_plugins.log_counter.logbuffer import single_line

    return single_line(pattern) and "$" not in pattern and "\\z" not in pattern


def count_messages_containing(pattern: str, messages: list[bytes]) -> int:
    """How many of ``messages`` (UTF-8) contain a match of ``pattern``: NPD's ``grep -i``.

    Messages of one line each are joined and searched with one RE2 call per pattern; a
    per-message search is the exact fallback for other patterns and multi-line messages.
    """
    if not messages:
        return 0
    text = b"\n".join(messages)
    if batchable(pattern) and text.count(b"\n") == len(messages) - 1:
        # Each match starts a line; a set, because google-re2's finditer may yield an empty
        # match at the end of the text twice.
        return len({m.start() for m in compile_pattern(pattern, per_line=True).finditer(text)})
    regex = compile_pattern(pattern)
    return sum(1 for message in messages if regex.search(message) is not None)


def parse_log_patterns(value: str) -> list[tuple[str, int]]:
    """One ``--log-pattern`` value: ``count:regex`` items, comma-separated (NPD's LogPatternFlag).

    The split is on the first colon, so a regex may hold colons but never commas. Errors carry
    NPD's texts; a regex RE2 rejects is an error too (NPD would only find out inside grep).
    """
    items = []
    for item in value.split(","):
        count_text, sep, pattern = item.partition(":")
        parts = [count_text, pattern] if sep else [count_text]
        if not sep:
            raise ValueError(f"invalid format of the flag value: {_go_list(parts)}")
        try:
            count = _go_atoi(count_text)
        except ValueError as exc:
            raise ValueError(
                f"invalid format for the flag value: {_go_list(parts)}: {exc}"
            ) from None
        if count == 0 or not pattern:
            raise ValueError(f"invalid format for the flag value: {_go_list(parts)}: <nil>")
        compile_pattern(pattern)
        items.append((pattern, count))
    return items


def pattern_map(items) -> dict[str, int]:
    """The patterns as NPD keeps them: a map, where a repeated pattern's last count wins."""
    return dict(items)


def format_patterns(patterns: dict[str, int]) -> str:
    """NPD's LogPatternFlag.String(): ``pattern:count`` sorted by pattern, space separated."""
    return " ".join(f"{p}:{patterns[p]}" for p in sorted(patterns))


def unit_name(service: str) -> str:
    """``kubelet`` -> ``kubelet.service``, as systemctl and journalctl complete a bare name."""
    suffixes = (".service", ".socket", ".scope", ".slice", ".target", ".mount", ".timer")
    return service if service.endswith(suffixes) else service + ".service"


def unit_matches(service: str) -> list[dict[str, str]]:
    """The journal matches of ``journalctl --unit SERVICE``: the unit's own messages and those
    systemd (PID 1) and coredumps log about it."""
    unit = unit_name(service)
    return [
        {"_SYSTEMD_UNIT": unit},
        {"_PID": "1", "UNIT": unit},
        {"_UID": "0", "OBJECT_SYSTEMD_UNIT": unit},
        {"COREDUMP_UNIT": unit},
    ]


def window_start(now: float, uptime: float, loopback: float) -> float:
    """Start of the log window (epoch seconds): the service start, or ``now - loopback`` when
    ``loopback`` is set and shorter than the uptime (NPD's logPatternHealthCheck)."""
    if loopback > 0 and uptime > loopback:
        return now - loopback
    return now - uptime


def count_pattern_matches(
    service: str,
    patterns,
    since: float,
    *,
    directory: str | None = None,
    journalctl: str = "journalctl",
    backend: str = "auto",
) -> dict[str, int]:
    """Journal entries of ``service`` from ``since`` (inclusive) on that each pattern matches.

    One pass over the window for all patterns, where NPD runs one journalctl per pattern. Raises
    :class:`ComponentError` when the journal cannot be read.
    """
    from healthcheck.sdk import journal

    try:
        messages = journal.read_messages(
            directory=directory,
            matches=unit_matches(service),
            since=since,
            journalctl=journalctl,
            backend=backend,
        )
    except journal.JournalError as exc:
        raise ComponentError(f"cannot read the journal of {service}: {exc}") from None
    return {pattern: count_messages_containing(pattern, messages) for pattern in patterns}


def check_log_patterns(ctx, service: str) -> str | None:
    """``None`` when no pattern reached its count, else which one did (one line).

    Raises :class:`ComponentError` when the uptime or the journal cannot be read.
    """
    import time

    opts = ctx.options
    patterns = pattern_map(opts.log_pattern)
    if not patterns:
        return None
    from healthcheck.sdk import systemd

    try:
        uptime = systemd.unit_uptime(service, systemctl=opts.systemctl)
    except systemd.SystemdError as exc:
        raise ComponentError(str(exc)) from None
    counts = count_pattern_matches(
        service,
        patterns,
        window_start(time.time(), uptime, opts.loopback_time),
        directory=opts.journal_directory or None,
        journalctl=opts.journalctl,
        backend=opts.journal_backend,
    )
    for pattern in sorted(patterns):
        if counts[pattern] >= patterns[pattern]:
            found, threshold = counts[pattern], patterns[pattern]
            return f'log pattern "{pattern}" found {found} times (threshold {threshold})'
    return None


# -------------------------------------------------------------------------------- declaration


def common_options(component: str, default_service: str) -> list[Option]:
    """NPD health-checker flags every component takes, plus our repair and journal options."""
    return [
        Option(
            "service",
            type=unit_option,
            default="",
            aliases=("--systemd-service",),
            help=f"the systemd unit of the component (empty: {default_service})",
        ),
        *REPAIR_OPTIONS,
        Option(
            "loopback_time",
            type="duration",
            default=0.0,
            minimum=0,
            help="log-pattern window: at most this far back (0: since the service started)",
        ),
        Option(
            "health_check_timeout",
            type="duration",
            default=10.0,
            minimum=0,
            help=f"how long the {component} probe may take (0: HTTP probes wait until the "
            "check's own deadline, other probes fail at once, as NPD's)",
        ),
        Option(
            "log_pattern",
            type=parse_log_patterns,
            multiple=True,
            metavar="COUNT:REGEX",
            help="unhealthy when REGEX (RE2, case-insensitive) matches at least COUNT journal "
            "entries of the unit in the window; repeatable, comma-separated",
        ),
        Option("systemctl", default="systemctl", help="the systemctl binary"),
        Option(
            "journalctl",
            default="journalctl",
            help="journalctl, used where systemd-python is missing",
        ),
        Option(
            "journal_backend",
            default="auto",
            choices=("auto", "native", "journalctl"),
            help="how to read the journal: systemd-python (native), journalctl, or auto",
        ),
        Option(
            "journal_directory",
            default="",
            help="read journal files from this directory (empty: the system journal)",
        ),
    ]


def service_of(opts, default_service: str) -> str:
    """The unit: ``--service`` when given, else the component's default (NPD's SetDefaults)."""
    return opts.service or default_service


def _stderr(component: str, message: str) -> None:
    """One log line for NPD's log: a probe's or a pattern's text, bounded and on one line."""
    from healthcheck.sdk.text import LOG_LIMIT, one_line

    print(one_line(f"{component}: {message}", LOG_LIMIT), file=sys.stderr, flush=True)


def make_check(component: str, default_service: str, probe):
    """NPD's CheckHealth around ``probe(ctx) -> str | None`` (``None`` healthy, else why not).

    ``probe`` raises :class:`ComponentError` when health cannot be determined.
    """

    def check(ctx) -> Result:
        opts = ctx.options
        service = service_of(opts, default_service)
        try:
            if opts.health_check_timeout <= 0 and not getattr(probe, "zero_timeout_waits", False):
                # NPD runs docker and crictl under a context whose deadline has then passed.
                problem = "health-check-timeout is 0: the probe's deadline has already passed"
            else:
                problem = probe(ctx)
            log_problem = check_log_patterns(ctx, service)
        except ComponentError as exc:
            return Result.unknown(f"error checking {component} health: {exc}")
        if problem is None and log_problem is None:
            return Result.ok()
        for why in (problem, log_problem):
            if why is not None:
                _stderr(component, why)  # stdout is the protocol line; NPD logs stderr
        flag = "true" if opts.enable_repair else "false"
        return Result.problem(f"{component}:{service} was found unhealthy; repair flag : {flag}")

    return check


def systemd_repair(default_service: str, *, signal_first: str | None = None) -> Repair:
    """``systemctl kill --kill-who=main UNIT``, after ``--signal=<signal_first>`` when given."""

    def uptime(ctx) -> float:
        from healthcheck.sdk import systemd

        return systemd.unit_uptime(
            service_of(ctx.options, default_service), systemctl=ctx.options.systemctl
        )

    def action(ctx) -> None:
        from healthcheck.sdk import systemd

        service = service_of(ctx.options, default_service)
        if signal_first:
            try:
                systemd.kill_main(service, signal=signal_first, systemctl=ctx.options.systemctl)
            except systemd.SystemdError as exc:  # the dump is a courtesy; the kill is the repair
                _stderr(default_service, f"{signal_first} to {service} failed: {exc}")
        systemd.kill_main(service, systemctl=ctx.options.systemctl)

    def describe(ctx) -> str:
        service = service_of(ctx.options, default_service)
        first = (
            f"send {signal_first} to the main process of {service}, then " if signal_first else ""
        )
        return f"{first}systemctl kill --kill-who=main {service}"

    return Repair(
        action,
        uptime=uptime,
        target=lambda ctx: unit_name(service_of(ctx.options, default_service)),
        describe=describe,
    )


def component_checker(
    name: str,
    *,
    component: str,
    default_service: str,
    description: str,
    probe,
    options=(),
    condition: Condition,
    npd_filename: str,
    npd_args,
    signal_first: str | None = None,
    validate=None,
    needs_path: str = "/var/lib/kubelet",
) -> Checker:
    """A :class:`Checker` for one component, declared as NPD's health-checker config declares it.

    ``needs_path`` tells ``healthcheck status`` whether the component belongs on this machine.
    """
    rule = NpdRule(condition, npd_args, program="health-checker", timeout=NPD_TIMEOUT)
    return Checker(
        name,
        description=description,
        check=make_check(component, default_service, probe),
        condition=condition,
        options=[*common_options(component, default_service), *options],
        interval=NPD_INTERVAL,
        timeout=CHECK_DEADLINE,
        repair=systemd_repair(default_service, signal_first=signal_first),
        validate=validate,
        applies=lambda: None if os.path.exists(needs_path) else f"{needs_path} does not exist",
        npd_monitors=[
            NpdMonitor(
                npd_filename,
                source="health-checker",
                rules=[rule],
                interval=NPD_INTERVAL,
                timeout=NPD_TIMEOUT,
                concurrency=1,
            )
        ],
    )


def probe_timeout(ctx) -> float:
    """``--health-check-timeout``, cut to what is left of the check's deadline."""
    return max(0.001, min(ctx.options.health_check_timeout, ctx.remaining()))


# Characters Go's url package accepts unescaped in a host (url.shouldEscape, encodeHost).
_HOST_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:[]<>\"%"
)


def go_url_error(url: str) -> str | None:
    """What Go's ``url.Parse`` says about the host and port of ``url``, or None if it accepts them.

    NPD builds its probe URL from ``HOST_ADDRESS`` and the port variable and reports a URL Go
    cannot parse as an error (exit 2); a parseable one that cannot be dialled is unhealthy.
    """
    from healthcheck.sdk.pflag import go_quote

    why = _go_host_error(url)
    return None if why is None else f"parse {go_quote(url)}: {why}"


def _go_host_error(url: str) -> str | None:
    from healthcheck.sdk.pflag import go_quote

    if any(c < " " or c == "\x7f" for c in url):
        return "net/url: invalid control character in URL"
    rest = url.split("#", 1)[0].split("?", 1)[0][len("http://") :]
    host = rest.split("/", 1)[0].rpartition("@")[2]
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            return "missing ']' in host"
        if not _valid_optional_port(host[end + 1 :]):
            return f"invalid port {go_quote(host[end + 1 :])} after host"
        literal, _, zone = host[1:end].partition("%25")
        if "%" in literal:
            zone, literal = literal.partition("%")[2], literal.partition("%")[0]
            bad = _escape_error("%" + zone)
            if bad:
                return bad
        if "[" in literal or "]" in literal:
            return "invalid IP-literal"
        try:
            import ipaddress

            ipaddress.IPv6Address(literal)
        except ValueError as exc:
            return f"invalid host: ParseAddr({go_quote(literal)}): {exc}"
        return None
    colon = host.find(":")
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        return f"invalid port {go_quote(host[colon:])} after host"
    bad = next((c for c in host if c.isascii() and c not in _HOST_CHARS), None)
    if bad is not None:
        return f"invalid character {go_quote(bad)} in host name"
    return _escape_error(host)


def _escape_error(host: str) -> str | None:
    """Go's ``unescape(host, encodeHost)``: ``%XX`` only for non-ASCII bytes, or ``%25``."""
    from healthcheck.sdk.pflag import go_quote

    hexdigits = "0123456789abcdefABCDEF"
    i = host.find("%")
    while i >= 0:
        code = host[i + 1 : i + 3]
        if i + 2 >= len(host) or len(code) < 2 or any(c not in hexdigits for c in code):
            return f"invalid URL escape {go_quote(host[i : i + 3])}"
        if int(code[0], 16) < 8 and code != "25":
            return f"invalid URL escape {go_quote(host[i : i + 3])}"
        i = host.find("%", i + 3)
    return None


def _valid_optional_port(port: str) -> bool:
    """Go's ``validOptionalPort``: empty, or a colon and ASCII digits."""
    if not port:
        return True
    return port[0] == ":" and all("0" <= c <= "9" for c in port[1:])


def http_probe(port_env: str, default_port: str, path_of):
    """A probe: healthy only on a final HTTP 200 from ``http://<HOST_ADDRESS>:<$port_env><path>``.

    As NPD's Go client: redirects are followed (as Go's client), the body is never read, and a
    transport error or any other status is unhealthy. A URL Go cannot parse (a bad
    ``HOST_ADDRESS`` or port) is an error, with Go's words, as in NPD. A
    ``--health-check-timeout`` of 0 means no timeout of the probe's own (Go's client), so the
    check's deadline bounds it.
    """

    def probe(ctx) -> str | None:
        from healthcheck.sdk import http
        from healthcheck.sdk.text import LOG_LIMIT, one_line

        host = os.environ.get("HOST_ADDRESS") or "localhost"
        port = os.environ.get(port_env) or default_port
        url = f"http://{http.join_host_port(host, port)}{path_of(ctx)}"
        parse_error = go_url_error(url)
        if parse_error is not None:
            raise ComponentError(parse_error)
        if ctx.options.health_check_timeout <= 0:
            timeout = max(0.001, ctx.remaining())
        else:
            timeout = probe_timeout(ctx)
        try:
            status, reason = http.probe_status(url, timeout=timeout)
        except http.HttpError as exc:
            return one_line(f"GET {url}: {exc}", LOG_LIMIT)
        if status != 200:
            return one_line(f"GET {url}: HTTP {status} {reason}", LOG_LIMIT)
        return None

    probe.zero_timeout_waits = True
    return probe
