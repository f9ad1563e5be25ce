"""maintenance-events: is the cloud about to reboot, redeploy, stop or migrate this node?

Reads the provider's metadata server directly (Alibaba ECS, AWS, Azure, GCP): PROBLEM while an
event of a disruptive type is pending, with what and when (soonest first); OK when none; UNKNOWN
when the endpoint cannot be read or answers nonsense, never "no events" on a failed read. With
``--write-host-event-log`` it also keeps the cloud-assistant plug-in's host_event.log.
"""

from __future__ import annotations

# Imports inside the functions below are deliberate: `healthcheck status` and the agent import
# every plugin, and a check imports only the provider module and HTTP client it talks to.
from healthcheck import Checker, Condition, Option, Result, hookimpl
from healthcheck.sdk.state import DEFAULT_STATE_DIR
from healthcheck_plugins.maintenance_events.metadata.detect import DMI_ROOT

MESSAGE_BYTES = 80
MAX_TOKEN_TTL = 21600  # 6h: what Alibaba's and AWS's metadata servers grant at most
PROVIDER_CHOICES = ("auto", "alibaba", "aws", "azure", "gcp")


def _names(values) -> set[str]:
    """Flag values split on commas, lower-cased for matching."""
    return {v.strip().lower() for item in values for v in item.split(",") if v.strip()}


def describe(events) -> str:
    """``TYPE STATUS at TIME`` for the soonest event, ``(+N more)`` for the rest; <= 80 bytes.

    The fields are the metadata server's (already one line, at most 120 bytes each): the type is
    cut first, with a ``~``, and only a status and time too long for any type are cut as well.
    """
    from healthcheck.sdk.text import one_line

    first = events[0]
    when = f" at {first.not_before}" if first.not_before else ", no time given"
    tail = f"{' ' + first.status if first.status else ''}{when}"
    more = f" (+{len(events) - 1} more)" if len(events) > 1 else ""
    room = MESSAGE_BYTES - len((tail + more).encode())
    if room >= 8:
        return one_line(first.type, room, marker="~") + tail + more
    return one_line(first.type + tail, MESSAGE_BYTES - len(more), marker="~") + more


def judge(reading, provider: str, types=(), statuses=()) -> Result:
    """The check's answer for one :class:`Reading`: never raises, always a :class:`Result`."""
    from healthcheck_plugins.maintenance_events.metadata import provider_module
    from healthcheck_plugins.maintenance_events.metadata.events import sort_key

    if not reading.ok:
        return Result.unknown(f"cannot read {provider} events: {reading.error}")
    module = provider_module(provider)
    disruptive_types = _names(types) or _names(module.DISRUPTIVE_TYPES)
    pending_statuses = _names(statuses) or _names(module.DISRUPTIVE_STATUSES)
    pending = sorted(
        (
            e
            for e in reading.events
            if e.type.lower() in disruptive_types and e.status.lower() in pending_statuses
        ),
        key=sort_key,
    )
    if pending:
        # The soonest not-before time travels as data, so remediation never parses the message.
        when = pending[0].when
        return Result.problem(
            describe(pending), data={"not_before": when} if when is not None else None
        )
    others = len(reading.events)
    if others:
        return Result.ok(f"No disruptive {provider} maintenance event ({others} other)")
    return Result.ok(f"No {provider} maintenance event")


def check(ctx) -> Result:
    from healthcheck_plugins.maintenance_events.metadata.fetch import read_events

    opts = ctx.options
    provider = opts.provider
    if provider == "auto":
        from healthcheck_plugins.maintenance_events.metadata.detect import resolve_provider

        try:
            provider = resolve_provider(provider, opts.dmi_root)
        except LookupError as exc:
            return Result.unknown(str(exc))
    # Leave a moment before the runner's deadline so the user sees why, not just "timed out".
    timeout = max(0.05, ctx.remaining() - 0.1)
    reading = read_events(provider, opts.endpoint or None, timeout, opts.state_dir, opts.token_ttl)
    result = judge(reading, provider, opts.disruptive_types, opts.disruptive_statuses)
    if reading.ok and opts.write_host_event_log:
        from healthcheck.sdk.text import one_line
        from healthcheck_plugins.maintenance_events.metadata.hostlog import (
            HostLogError,
            write_new_events,
        )

        try:
            written = write_new_events(reading.events, opts.write_host_event_log, opts.state_dir)
            ctx.log(f"{written} new line(s) in {one_line(opts.write_host_event_log, 200)}")
        except HostLogError as exc:
            ctx.log(str(exc))
            if result.status == 0:  # a pending event outranks the log; otherwise say it failed
                return Result.unknown(str(exc))
    return result


def validate(options) -> None:
    from healthcheck.sdk.text import LOG_LIMIT, one_line

    if options.endpoint and not options.endpoint.startswith("http://"):
        shown = one_line(options.endpoint, 60, marker="…")
        raise ValueError(f'--endpoint "{shown}": use an http:// URL')
    if options.endpoint:
        from healthcheck.sdk.http import HttpError, split_url

        try:
            split_url(options.endpoint)
        except HttpError as exc:
            raise ValueError(one_line(f"--endpoint: {exc}", LOG_LIMIT)) from None


def applies() -> str | None:
    from healthcheck_plugins.maintenance_events.metadata.detect import detect_provider

    return None if detect_provider() else "not on a known cloud (DMI)"


def _token_ttl(text: str) -> int:
    from healthcheck.sdk.duration import parse_duration

    # Plain seconds as the TTL header takes them, or a duration (6h).
    seconds = int(text) if text.isascii() and text.isdigit() else parse_duration(text)
    if not 1 <= seconds <= MAX_TOKEN_TTL:
        raise ValueError(f'token TTL "{text}" must be between 1s and 6h')
    return int(seconds)


CHECKER = Checker(
    "maintenance-events",
    description="cloud maintenance events (Alibaba ECS, AWS, Azure, GCP) from the metadata server",
    check=check,
    condition=Condition(
        "MaintenanceScheduled",
        "MaintenanceEventPending",
        "NoMaintenanceScheduled",
        "No disruptive maintenance event is pending",
    ),
    options=[
        Option(
            "provider",
            default="auto",
            choices=PROVIDER_CHOICES,
            help="auto (from DMI vendor strings), alibaba, aws, azure or gcp",
        ),
        Option(
            "endpoint",
            default="",
            metavar="URL",
            help="metadata server base URL; empty means the provider's own address",
        ),
        Option("dmi_root", default=DMI_ROOT, help="where DMI strings are read"),
        Option(
            "state_dir",
            default=DEFAULT_STATE_DIR,
            help="where the metadata token and the host_event.log record are kept",
        ),
        Option(
            "token_ttl",
            type=_token_ttl,
            default=MAX_TOKEN_TTL,
            metavar="DURATION",
            help="TTL asked for Alibaba/AWS tokens, in seconds or as 6h; renewed shortly before",
        ),
        Option(
            "disruptive_types",
            multiple=True,
            metavar="TYPE[,TYPE]",
            help="event types that count; none means the provider's reboot/stop/redeploy types",
        ),
        Option(
            "disruptive_statuses",
            multiple=True,
            metavar="STATUS[,STATUS]",
            help="statuses that mean pending; none means Inquiring,Scheduled,Executing or peers",
        ),
        Option(
            "write_host_event_log",
            default="",
            metavar="PATH",
            help="also append new events to this host_event.log (cloud-assistant format)",
        ),
    ],
    interval=15.0,
    timeout=5.0,
    applies=applies,
    validate=validate,
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]


@hookimpl
def healthcheck_commands():
    # Imported only when healthcheck looks for plugin commands: a check never needs argparse.
    from healthcheck_plugins.maintenance_events.hostlog_command import COMMAND

    return [COMMAND]
