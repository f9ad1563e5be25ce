"""``healthcheck list``, ``status``, ``npd-config`` and ``agent``: parse, then hand off at once.

Each subcommand imports what it runs only when it runs (a function-local import each): the
status table's thread pool, the NPD config writer or the agent are nobody else's cost.
"""

from __future__ import annotations

from healthcheck import _host as host
from healthcheck._cli_io import PROG, UsageError, out, parser
from healthcheck.sdk.text import CONDITION_LIMIT, one_line


def cmd_list(argv: list[str]) -> int:
    """``healthcheck list [--json]``: every checker, where it comes from, and broken plugins."""
    args_parser = parser(f"{PROG} list", "List installed checkers.")
    args_parser.add_argument("--json", action="store_true")
    args = args_parser.parse_args(argv)

    catalog = host.discover()
    rows = [
        {
            "name": c.name,
            "distribution": c.distribution,
            "plugin": c.plugin,
            "description": c.checker.description,
            "status": "ok",
            "error": None,
        }
        for c in catalog
    ]
    rows += [
        {
            "name": b.checker or b.plugin,
            "distribution": b.distribution,
            "plugin": b.plugin,
            "description": "",
            "status": "broken",
            "error": b.error,
        }
        for b in catalog.broken
    ]
    if args.json:
        import json  # for --json alone

        print(json.dumps(rows, indent=2), file=out())
        return 0
    from healthcheck._table import render_table  # for the table alone

    table = [
        [
            r["name"],
            r["distribution"],
            r["status"] if r["error"] is None else f"broken: {r['error']}",
            r["description"],
        ]
        for r in rows
    ]
    print(render_table(["CHECKER", "DISTRIBUTION", "STATUS", "DESCRIPTION"], table), file=out())
    return 0


def cmd_status(argv: list[str]) -> int:
    """``healthcheck status``: every applicable checker once, concurrently, as a table."""
    args_parser = parser(f"{PROG} status", "Run every checker that applies to this machine once.")
    args_parser.add_argument("--json", action="store_true")
    args_parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    args = args_parser.parse_args(argv)
    from healthcheck._status import run_status  # a thread pool and json: status's own cost

    return run_status(as_json=args.json, color=args.color, out=out())


def cmd_npd_config(argv: list[str]) -> int:
    """``healthcheck npd-config [NAME ...] --output-dir DIR [--command PATH]``."""
    from healthcheck._npdconfig import DEFAULT_COMMAND, write_configs  # npd-config's own

    args_parser = parser(
        f"{PROG} npd-config", "Write NPD custom-plugin-monitor JSON for installed checkers."
    )
    args_parser.add_argument("names", nargs="*", metavar="NAME", help="checkers (default: all)")
    args_parser.add_argument("--output-dir", required=True, help="directory to write the files to")
    args_parser.add_argument(
        "--command",
        default=DEFAULT_COMMAND,
        help=f"path of the healthcheck executable on the node (default: {DEFAULT_COMMAND})",
    )
    args = args_parser.parse_args(argv)
    try:
        for path in write_configs(args.names, args.output_dir, args.command):
            print(one_line(path, CONDITION_LIMIT), file=out())  # --output-dir is argv
    except LookupError as exc:
        raise UsageError(f"{PROG} npd-config: {exc.args[0]}") from None
    except OSError as exc:
        raise UsageError(
            f"{PROG} npd-config: cannot write to {args.output_dir}: {exc.strerror or exc}"
        ) from None
    return 0


# ---------------------------------------------------------------------------------------- agent


def cmd_agent(argv: list[str]) -> int:
    """``healthcheck agent --config FILE [--once] [--kubeconfig PATH] [--node-name NAME]``."""
    args_parser = parser(
        f"{PROG} agent", "Run checkers on a schedule and report NodeConditions and Events."
    )
    args_parser.add_argument("--config", required=True, metavar="FILE", help="agent YAML config")
    args_parser.add_argument(
        "--once", action="store_true", help="run every check once, report, exit"
    )
    args_parser.add_argument("--kubeconfig", metavar="PATH", help="default: the in-cluster config")
    args_parser.add_argument(
        "--node-name", metavar="NAME", help="default: $NODE_NAME, then hostname"
    )
    args_parser.add_argument(
        "--dry-run", action="store_true", help="print API writes and repairs, do neither"
    )
    args_parser.add_argument(
        "--output",
        choices=("json", "table"),
        help="--dry-run's form (default: table on a terminal, else JSON lines)",
    )
    args_parser.add_argument("--check-config", action="store_true", help="validate FILE and exit")
    args = args_parser.parse_args(argv)
    from healthcheck._agent.main import AgentUsageError, run  # the agent: its own cost

    try:
        return run(
            args.config,
            once=args.once,
            kubeconfig=args.kubeconfig,
            node=args.node_name,
            dry_run=args.dry_run,
            check_config=args.check_config,
            output=args.output,
        )
    except AgentUsageError as exc:
        raise UsageError(f"{PROG} agent: {exc}") from None
