"""``healthcheck host-event-log``: append new cloud maintenance events to host_event.log.

For a systemd timer (packaging/systemd/): the format of Alibaba's cloud-assistant plug-in, so the
NPD rules written for that log (config/host_event.json) read ours. Contributed to ``healthcheck``
through the ``healthcheck_commands`` hook (see :mod:`healthcheck.hookspecs`).
"""

from __future__ import annotations

import argparse
import sys

from healthcheck import Status
from healthcheck.sdk.console import (
    Command,
    UsageError,
    argument_parser,
    non_negative_int,
    positive_duration,
)
from healthcheck.sdk.state import DEFAULT_STATE_DIR
from healthcheck.sdk.text import CONDITION_LIMIT, one_line
from healthcheck_plugins.maintenance_events.checker import MAX_TOKEN_TTL, PROVIDER_CHOICES
from healthcheck_plugins.maintenance_events.metadata.detect import DMI_ROOT
from healthcheck_plugins.maintenance_events.metadata.hostlog import (
    DEFAULT_LOG_PATH,
    write_events_from,
)

NAME = "host-event-log"
PROG = f"healthcheck {NAME}"
DEFAULT_TIMEOUT = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argument_parser(
        PROG,
        "Append new cloud maintenance events to host_event.log in the format of "
        "Alibaba's cloud-assistant plug-in (for a systemd timer).",
    )
    parser.add_argument(
        "--provider",
        choices=PROVIDER_CHOICES,
        default="auto",
        help="cloud provider; auto reads DMI (default: auto)",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="metadata server base URL (default: the provider's own address)",
    )
    parser.add_argument("--dmi-root", default=DMI_ROOT, help=argparse.SUPPRESS)
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help=f"token and written-events record (default: {DEFAULT_STATE_DIR})",
    )
    parser.add_argument(
        "--log-path",
        default=DEFAULT_LOG_PATH,
        help=f"the log to append to (default: {DEFAULT_LOG_PATH})",
    )
    parser.add_argument(
        "--timeout",
        type=positive_duration,
        default=DEFAULT_TIMEOUT,
        help="deadline for reading the metadata server (default: 5s)",
    )
    parser.add_argument(
        "--token-ttl",
        type=non_negative_int,
        default=MAX_TOKEN_TTL,
        help=f"seconds requested for Alibaba/AWS tokens (default: {MAX_TOKEN_TTL})",
    )
    return parser


def run(argv: list[str]) -> int:
    """Parse ``argv``, read the metadata server once and append what is new; the exit code."""
    args = _parser().parse_args(argv)
    if args.endpoint is not None and not args.endpoint.startswith("http://"):
        raise UsageError(f'{PROG}: --endpoint "{args.endpoint}": use http://')
    if not 1 <= args.token_ttl <= MAX_TOKEN_TTL:
        raise UsageError(f"{PROG}: --token-ttl must be between 1 and {MAX_TOKEN_TTL}")
    try:
        written = write_events_from(
            args.provider,
            args.endpoint,
            args.timeout,
            args.state_dir,
            args.token_ttl,
            args.log_path,
            args.dmi_root,
        )
    except (LookupError, OSError) as exc:
        print(f"{PROG}: {one_line(exc, CONDITION_LIMIT)}", file=sys.stderr)
        return int(Status.UNKNOWN)
    print(f"{written} new event line(s) in {one_line(args.log_path, CONDITION_LIMIT)}")
    return 0


COMMAND = Command(NAME, "append cloud maintenance events to host_event.log", run)
