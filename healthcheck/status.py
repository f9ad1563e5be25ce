"""``healthcheck status``: every checker that applies here, run once, side by side."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from healthcheck import host
from healthcheck.protocol import Status, clamp_message, describe_error, worst
from healthcheck.runner import run_check
from healthcheck.table import render_table, use_colour

MESSAGE_WIDTH = 80


def _applies(checker) -> str | None:
    if checker.applies is None:
        return None
    try:
        return checker.applies()
    except Exception as exc:
        return f"cannot tell whether it applies: {describe_error(exc)}"


def collect() -> list[dict]:
    """Run every applicable checker concurrently with its defaults; one row per checker."""
    catalog = host.discover()
    rows, runnable = [], []
    for loaded in catalog:
        reason = _applies(loaded.checker)
        if reason:
            rows.append(
                {
                    "checker": loaded.name,
                    "status": "SKIPPED",
                    "message": reason,
                    "duration_seconds": 0.0,
                }
            )
        else:
            runnable.append(loaded.checker)
    for broken in catalog.broken:
        rows.append(
            {
                "checker": broken.checker or broken.plugin,
                "status": "UNKNOWN",
                "message": f"broken plugin: {broken.error}",
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


def run_status(as_json: bool = False, color: str = "auto") -> int:
    """Print the table (or JSON) and return the worst status as the exit code."""
    rows = collect()
    statuses = [Status[r["status"]] for r in rows if r["status"] != "SKIPPED"]
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        table = [
            [r["checker"], r["status"], f"{r['duration_seconds'] * 1000:.0f}ms", r["message"]]
            for r in rows
        ]
        print(render_table(["CHECK", "STATUS", "TIME", "MESSAGE"], table, 1, use_colour(color)))
        from healthcheck.agent.remediation.local import agent_entry, status_line

        line = status_line(agent_entry())  # only when a local agent remediates
        if line:
            print(line)
    return int(worst(statuses))
