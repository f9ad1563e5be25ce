"""log-counter: how often did a journald source log a pattern in the recent past? (spec 4)

A drop-in for NPD's log-counter: the same flags, window, 1000-line buffer matching, revert
pattern, threshold and messages. Two deliberate differences (README, compatibility):

- the pattern is anchored at the end of the newest line as a whole, ``(?:pattern)\\z``, so a
  top-level alternation ``a|b`` does not match old lines again on every push (NPD's defect);
- counting ends at the end of the journal instead of after one second without a new entry
  (the journal is read from its files, so its end is known; NPD's 1s wait only ever delays).
"""

from __future__ import annotations

from healthcheck import Checker, Condition, NpdMonitor, NpdRule, Option, Result, hookimpl

WATCH_ERROR = "error watching journald: "  # how NPD's log-counter prefixes journal errors
EMPTY_SOURCE = WATCH_ERROR + "failed to filter journal log, empty source is not allowed"
FOUND = "Found {count} matching logs, which meets the threshold of {threshold}"


def validate(options) -> None:
    """Startup errors NPD master's log-counter reports before reading anything, in its order and
    words: the patterns, the window's durations, the source. (NPD checks the log path between
    the last two; that is I/O, done by the check itself and by the drop-in's startup.)"""
    # Here, not at the top: every plugin is imported by `status` and the agent, and RE2 is heavy.
    from healthcheck.sdk.pflag import go_quote
    from healthcheck_plugins.log_counter.logbuffer import PatternError, compile_pattern
    from healthcheck_plugins.log_counter.window import validate_durations

    for what, expr in (("pattern", options.pattern), ("revert pattern", options.revert_pattern)):
        try:
            compile_pattern(expr)
        except PatternError as exc:
            raise ValueError(f"invalid {what} {go_quote(expr)}: {exc}") from None
    validate_durations(options.lookback, options.delay)
    if not options.journald_source:
        raise ValueError(EMPTY_SOURCE)


def count_matches(options, now: float, uptime: float, *, backend: str = "auto") -> int:
    """The count NPD's log-counter computes for ``options`` at ``now`` (epoch seconds).

    Raises ``ValueError`` for bad options and ``JournalError`` when the journal is unreadable.
    """
    # The journal reader and the buffer only when counting (see validate()).
    from healthcheck.sdk.journal import read_messages
    from healthcheck_plugins.log_counter.logbuffer import LogCounter
    from healthcheck_plugins.log_counter.window import lookback_start

    start = lookback_start(now, uptime, options.lookback, options.delay)
    counter = LogCounter(options.pattern, options.revert_pattern)
    messages = read_messages(
        directory=options.log_path or None,
        matches=[{"SYSLOG_IDENTIFIER": options.journald_source}],
        since=start,
        until=now,  # stop at the first entry newer than the moment counting started
        backend=backend,
    )
    counter.push_messages(messages)
    return counter.count


def check(ctx) -> Result:
    # What only a run needs, not a plugin discovery (see validate()).
    import time

    from healthcheck.sdk.journal import JournalError, npd_log_path_error
    from healthcheck_plugins.log_counter.window import uptime

    opts = ctx.options
    try:
        validate(opts)
        path_error = npd_log_path_error(opts.log_path)
        if path_error is not None:
            raise ValueError(WATCH_ERROR + path_error)
        now = time.time()
        count = count_matches(opts, now, uptime())
    except ValueError as exc:
        return Result.unknown(str(exc))
    except JournalError as exc:
        return Result.unknown(WATCH_ERROR + str(exc))
    ctx.log(f"{count} matching logs (threshold {opts.count})")
    if count >= opts.count:
        return Result.problem(FOUND.format(count=count, threshold=opts.count))
    return Result.ok()


def applies() -> str | None:
    # Without --journald-source there is nothing to count: the checker is configured per rule
    # (NPD config or agent), so `healthcheck status` lists it as not applicable instead of failing.
    return "needs --journald-source and --pattern, set per rule (see config/)"


def _counter_rule(condition: Condition, source: str, lookback: str, count: int, *extra: str):
    args = [f"--journald-source={source}", "--log-path=/var/log/journal", f"--lookback={lookback}"]
    args += [a for a in extra if a.startswith("--delay=")]
    args.append(f"--count={count}")
    args += [a for a in extra if not a.startswith("--delay=")]
    return NpdRule(condition, args, program="log-counter", timeout=60.0)


def _restart_rule(
    kind: str, unit: str, description: str, verb: str, suffix: str, *extra: str, tail=None
):
    names = f"({description}|{unit}.service|{unit}.service - {tail or description})"
    condition = Condition(
        f"Frequent{kind}Restart",
        f"Frequent{kind}Restart",
        f"NoFrequent{kind}Restart",
        f"{unit} is functioning properly",
    )
    return _counter_rule(
        condition,
        "systemd",
        "20m",
        5,
        *extra,
        f"--pattern={verb} {names}{suffix}",
        f"--revert-pattern=Stopping {names}...",
    )


def _npd_monitors() -> list[NpdMonitor]:
    """NPD's three shipped counter configs (spec 2.10), running our log-counter."""
    common = {"interval": 300.0, "timeout": 60.0, "concurrency": 1}
    systemd = NpdMonitor(
        "systemd-monitor-counter.json",
        source="systemd-monitor",
        rules=[
            _restart_rule(
                "Kubelet", "kubelet", "Kubernetes kubelet", "Started", ".", "--delay=5m", tail=".*"
            ),
            _restart_rule(
                "Docker", "docker", "Docker Application Container Engine", "Starting", "..."
            ),
            _restart_rule(
                "Containerd", "containerd", "containerd container runtime", "Starting", "..."
            ),
        ],
        **common,
    )
    kernel = NpdMonitor(
        "kernel-monitor-counter.json",
        source="kernel-monitor",
        rules=[
            _counter_rule(
                Condition(
                    "FrequentUnregisterNetDevice",
                    "UnregisterNetDevice",
                    "NoFrequentUnregisterNetDevice",
                    "node is functioning properly",
                ),
                "kernel",
                "20m",
                3,
                r"--pattern=unregister_netdevice: waiting for \w+ to become free. "
                r"Usage count = \d+",
            )
        ],
        **common,
    )
    docker = NpdMonitor(
        "docker-monitor-counter.json",
        source="docker-monitor",
        rules=[
            _counter_rule(
                Condition(
                    "CorruptDockerOverlay2",
                    "CorruptDockerOverlay2",
                    "NoCorruptDockerOverlay2",
                    "docker overlay2 is functioning properly",
                ),
                "dockerd",
                "5m",
                10,
                "--pattern=returned error: readlink /var/lib/docker/overlay2.*: invalid argument.*",
            )
        ],
        **common,
    )
    return [systemd, kernel, docker]


OPTIONS = [
    Option("journald_source", help="SYSLOG_IDENTIFIER to count (required)"),
    Option("log_path", default="", help="journal directory (empty: the system journal)"),
    Option("lookback", default="", help="how far back to count, e.g. 20m (empty: no history)"),
    Option("delay", default="", help="ignore logs from the first DELAY after boot, e.g. 5m"),
    Option("pattern", default="", help="RE2 pattern that must match up to the end of a line"),
    Option("revert_pattern", default="", help="each match of this pattern decrements the count"),
    Option("count", type="int", default=1, help="problem when the count reaches this threshold"),
]

CHECKER = Checker(
    "log-counter",
    description="count a journald source's lines matching a pattern over a lookback window",
    check=check,
    condition=Condition(
        "FrequentLogPattern",
        "FrequentLogPattern",
        "NoFrequentLogPattern",
        "the log pattern is below its threshold",
    ),
    options=OPTIONS,
    interval=300.0,
    timeout=55.0,  # NPD's shipped rules allow 1m; answer before NPD kills us
    validate=validate,
    applies=applies,
    npd_monitors=_npd_monitors(),
)


@hookimpl
def healthcheck_checkers():
    return [CHECKER]
