"""``healthcheck status``: every checker that applies here, run once, side by side."""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from healthcheck import _host as host
from healthcheck._deadline import Deadline
from healthcheck._protocol import Status, clamp_message, describe_error, worst
from healthcheck._runner import guarded, run_check
from healthcheck._table import render_table, use_colour
from healthcheck.sdk import state

MESSAGE_WIDTH = 80
# How long all checkers' applies() together may take. They only look at the machine (a path
# exists, a DMI string); one that hangs (a stale NFS path, a blocking read) must not hang
# the whole table.
APPLIES_TIMEOUT = 2.0


def _applies(checker) -> str | None:
    if checker.applies is None:
        return None
    failed = "cannot tell whether it applies: "
    reason = guarded(checker.applies, failed=lambda exc: failed + describe_error(exc))
    if reason is not None and not isinstance(reason, str):
        return f"{failed}applies() returned {type(reason).__name__}"
    return reason


def _applies_all(checkers, timeout: float = APPLIES_TIMEOUT) -> dict[str, tuple[str, str]]:
    """Each checker's ``applies()`` in a daemon thread of its own, all under one deadline.

    Returns ``{name: (status, reason)}`` for the checkers that do not apply (``SKIPPED``) or
    could not say in time (``UNKNOWN``); the others are absent.
    """
    answers: dict[str, str | None] = {}
    threads = []
    for checker in checkers:
        if checker.applies is None:
            answers[checker.name] = None
            continue

        def ask(checker=checker) -> None:
            answers[checker.name] = _applies(checker)

        thread = threading.Thread(target=ask, name=f"applies-{checker.name}", daemon=True)
        thread.start()
        threads.append((checker, thread))
    deadline = Deadline(timeout)
    for _, thread in threads:
        thread.join(deadline.remaining())
    answered = dict(answers)  # one snapshot: a late answer must not change the table below
    verdicts = {}
    for checker, _ in threads:
        if checker.name not in answered:
            verdicts[checker.name] = ("UNKNOWN", f"applies() did not return within {timeout:g}s")
    for name, reason in answered.items():
        if reason:
            verdicts[name] = ("SKIPPED", reason)
    return verdicts


def collect() -> list[dict]:
    """Run every applicable checker concurrently with its defaults; one row per checker."""
    # status only looks: a check that records something (conntrack's drop baseline, a repair
    # time) must leave it for the next real run, which would otherwise miss what it saw.
    state.read_only()
    catalog = host.discover()
    rows, runnable = [], []
    verdicts = _applies_all([loaded.checker for loaded in catalog])
    for loaded in catalog:
        verdict = verdicts.get(loaded.name)
        if verdict:
            rows.append(
                {
                    "checker": loaded.name,
                    "status": verdict[0],
                    "message": clamp_message(verdict[1], MESSAGE_WIDTH) or "-",
                    "duration_seconds": 0.0,
                }
            )
        else:
            runnable.append(loaded.checker)
    for broken in catalog.broken:
        rows.append(
            {
                "checker": clamp_message(broken.checker or broken.plugin, MESSAGE_WIDTH),
                "status": "UNKNOWN",
                "message": clamp_message(f"broken plugin: {broken.error}", MESSAGE_WIDTH),
                "duration_seconds": 0.0,
            }
        )
    if runnable:
        with ThreadPoolExecutor(max_workers=min(8, len(runnable))) as pool:
            # status only looks: it never repairs, whatever a checker's enable_repair default is.
            outcomes = pool.map(lambda c: (c, run_check(c, c.defaults(), repair=False)), runnable)
            for checker, outcome in outcomes:
                rows.append(
                    {
                        "checker": checker.name,
                        "status": outcome.result.status.name,
                        "message": clamp_message(outcome.result.message, MESSAGE_WIDTH) or "-",
                        "duration_seconds": round(outcome.duration, 3),
                    }
                )
    rows.sort(key=lambda r: r["checker"])
    return rows


def run_status(as_json: bool = False, color: str = "auto", out=None) -> int:
    """Print the table (or JSON) on ``out`` (stdout) and return the worst status as exit code."""
    out = out or sys.stdout
    rows = collect()
    statuses = [Status[r["status"]] for r in rows if r["status"] != "SKIPPED"]
    if as_json:
        print(json.dumps(rows, indent=2), file=out)
    else:
        table = [
            [r["checker"], r["status"], f"{r['duration_seconds'] * 1000:.0f}ms", r["message"]]
            for r in rows
        ]
        colour = use_colour(color, out)
        print(render_table(["CHECK", "STATUS", "TIME", "MESSAGE"], table, 1, colour), file=out)
        # The agent's remediation record, read only for the table (not with --json).
        from healthcheck._agent.remediation.local import agent_entry, status_line

        line = status_line(agent_entry())  # only when a local agent remediates
        if line:
            print(line, file=out)
    return int(worst(statuses))
