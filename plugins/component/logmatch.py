"""The log-pattern half of a component check: NPD's ``--log-pattern`` over the unit's journal.

NPD's health-checker runs ``journalctl -u UNIT --since ... | grep -i PATTERN | wc -l`` per
pattern (spec 3.3); here the unit's journal window is read once, for all patterns, and each
pattern is searched with RE2 (:mod:`healthcheck.sdk.patterns`), case-insensitive as ``grep -i``.
A pattern reaching its count makes the component unhealthy, whatever its probe said.
"""

from __future__ import annotations

import time

from healthcheck.sdk import systemd
from healthcheck.sdk.patterns import PatternError, compile_re2, single_line


class ComponentError(Exception):
    """The health could not be determined (exit 2, ``error checking <component> health: ...``)."""


def _go_list(parts: list[str]) -> str:
    return "[" + " ".join(parts) + "]"  # how Go's %v prints a []string


def _go_atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` (base 10, 64 bits): ``+3`` is 3; ``0x2``, ``1_0``, ``٣`` and
    values past int64 are errors, worded as Go words them."""
    # Here, not at the top: pflag costs ~2.5 ms to import; only a --log-pattern value needs it.
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
    try:
        if per_line:
            return compile_re2(pattern, prefix="(?m:^)[^\\n]*?", ignore_case=True, as_bytes=True)
        return compile_re2(pattern, ignore_case=True)
    except PatternError as exc:
        # Here, not at the top: pflag costs ~2.5 ms to import; only an error message needs it.
        from healthcheck.sdk.pflag import go_quote

        raise ValueError(f"invalid regular expression {go_quote(pattern)}: {exc}") from None


def batchable(pattern: str) -> bool:
    """True when whether ``pattern`` is found in a one-line message does not depend on the
    text around it: it never matches a newline and has no beginning or end anchors."""
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
    # Here, not at the top: the journal readers are only needed when log patterns are set,
    # which a one-shot check without --log-pattern never pays for.
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
    opts = ctx.options
    patterns = pattern_map(opts.log_pattern)
    if not patterns:
        return None
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
