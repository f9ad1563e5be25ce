"""``healthcheck agent --dry-run``: print what would be written and repaired; change nothing.

:class:`DryRunApi` stands in for :class:`healthcheck._agent.kube.KubeApi`. Creating one puts the
whole process in repair dry run (:func:`healthcheck.sdk.repair.dry_run_only`, which cannot be
undone) and makes its state files read-only (:func:`healthcheck.sdk.state.read_only`), so an agent
that prints instead of sending can never kill a service or move a baseline either; the
repair policy still decides, and what it would do is printed beside the API writes.

Two forms, one record per write or repair:

- ``json``: one object per line, exactly the JSON the API server would get
  (``{"verb", "path", "body"}``), and ``{"verb": "REPAIR", "check", "target", "action",
  "would_run", "reason"}`` for a repair;
- ``table``: for a person, a titled block per record, columns as ``healthcheck status`` prints
  them, every value one line and cut to fit.
"""

from __future__ import annotations

import json
import threading
from typing import Any, TextIO

from healthcheck._agent.kube import quote
from healthcheck._table import render_table
from healthcheck.sdk import repair, state
from healthcheck.sdk.repair import Preview
from healthcheck.sdk.text import LOG_LIMIT, PROTOCOL_LIMIT, one_line

FORMS = ("json", "table")
CONDITION_HEADER = ["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"]
EVENT_HEADER = ["TYPE", "REASON", "COUNT", "MESSAGE"]


Json = dict[str, Any]


def _cell(value: object, limit: int = PROTOCOL_LIMIT) -> str:
    """A table cell: one line, at most ``limit`` bytes, "-" when empty."""
    return one_line("" if value is None else value, limit, marker="…") or "-"


def _block(title: str, header: list[str], rows: list[list[str]]) -> str:
    table = render_table(header, rows)
    return title + "\n" + "\n".join("  " + line for line in table.splitlines()) + "\n"


def condition_rows(body: Json) -> list[list[str]]:
    conditions = body.get("status", {}).get("conditions", [])
    return [
        [
            _cell(c.get("type")),
            _cell(c.get("status")),
            _cell(c.get("reason")),
            _cell(c.get("lastTransitionTime")),
            _cell(c.get("message")),
        ]
        for c in conditions
    ]


def event_rows(body: Json) -> list[list[str]]:
    return [
        [
            _cell(body.get("type")),
            _cell(body.get("reason")),
            _cell(body.get("count")),
            _cell(body.get("message")),
        ]
    ]


class DryRunApi:
    """Prints what would be sent, on ``out`` in ``form`` (``json`` or ``table``); sends nothing.

    Thread-safe: API writes come from the reporter thread, repair previews from check threads.
    A closed ``out`` (``| head``) silences it instead of killing the thread that printed.
    """

    def __init__(self, out: TextIO, form: str = "json") -> None:
        if form not in FORMS:
            raise ValueError(f"unknown output form {form!r} (known: {', '.join(FORMS)})")
        self._out = out
        self._form = form
        self._lock = threading.Lock()
        self._closed = False
        repair.dry_run_only(self.repair)
        state.read_only()  # nor does any check record anything (a baseline, a cached token)

    def _emit(self, record: Json, table: str) -> Json:
        text = json.dumps(record, sort_keys=True) + "\n" if self._form == "json" else table
        with self._lock:
            if self._closed:
                return {}
            try:
                self._out.write(text)
                self._out.flush()
            except (BrokenPipeError, ValueError):  # ValueError: write to a closed file
                self._closed = True
        return {}

    def get_node(self, name: str) -> Json:
        return {}

    def _write(
        self, verb: str, path: str, body: Json, header: list[str], rows: list[list[str]]
    ) -> Json:
        table = _block(f"{verb} {_cell(path, LOG_LIMIT)}", header, rows)
        return self._emit({"verb": verb, "path": path, "body": body}, table)

    def patch_node_status(self, name: str, body: Json) -> Json:
        path = f"/api/v1/nodes/{quote(name)}/status"
        return self._write("PATCH", path, body, CONDITION_HEADER, condition_rows(body))

    def create_event(self, namespace: str, body: Json) -> Json:
        path = f"/api/v1/namespaces/{quote(namespace)}/events"
        return self._write("POST", path, body, EVENT_HEADER, event_rows(body))

    def patch_event(self, namespace: str, name: str, patch: Json) -> Json:
        path = f"/api/v1/namespaces/{quote(namespace)}/events/{quote(name)}"
        return self._write("PATCH", path, patch, EVENT_HEADER, event_rows(patch))

    def repair(self, preview: Preview) -> None:
        """A repair the policy would run (or not), from :mod:`healthcheck.sdk.repair`."""
        table = _block(
            f"REPAIR {_cell(preview.checker)} (dry run: nothing is run)",
            ["TARGET", "WOULD RUN", "ACTION", "WHY"],
            [
                [
                    _cell(preview.target),
                    "yes" if preview.would_run else "no",
                    _cell(preview.action, LOG_LIMIT),
                    _cell(preview.reason, LOG_LIMIT),
                ]
            ],
        )
        record = {
            "verb": "REPAIR",
            "check": preview.checker,
            "target": preview.target,
            "action": preview.action,
            "would_run": preview.would_run,
            "reason": preview.reason,
        }
        self._emit(record, table)
