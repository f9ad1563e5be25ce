"""``health-checker``: a drop-in for NPD's Go health-checker binary (spec section 3).

Flags are parsed as Go's pflag parses them (``--flag=value``, ``--flag value``, bare booleans,
``--enable-repair=false`` in strconv.ParseBool syntax, klog's ``-v``/``--v`` shorthand, ``--``;
arguments that are not flags are ignored, as NPD ignores them). Every NPD flag is accepted for
every component, as NPD accepts them; the chosen checker's own extra options
(``--state-dir``, ``--dry-run-repair``, ``--docker-socket``, ...) are accepted too.

Output and exit codes are NPD's (spec 3.6): silence and 0 when healthy; the
``<component>:<service> was found unhealthy; repair flag : <bool>`` line and 1; ``error checking
<component> health: <reason>`` and 2; a bad flag's one-line error on stdout and 2.

Parsing is :mod:`healthcheck.sdk.pflag`, shared with ``log-counter``.
"""

from __future__ import annotations

import sys

from healthcheck import Option, OptionError
from healthcheck.sdk.console import console_main, find_checker, run_checker
from healthcheck.sdk.duration import parse_duration
from healthcheck.sdk.pflag import KLOG_FLAGS, FlagError, HelpRequested, report_usage_error
from healthcheck.sdk.pflag import parse as parse_flags
from healthcheck.sdk.text import RESULT_LIMIT, one_line
from healthcheck_plugins.component.checker import parse_log_patterns

COMPONENTS = ("kubelet", "docker", "cri", "kube-proxy")
PROG = "health-checker"
# NPD's flags that exist for every component, with the checker option each one sets. The CRI
# ones are accepted (and type-checked) for every component, as NPD does, but used by cri only.
NPD_FLAGS = {
    "--component": "component",
    "--service": "service",
    "--systemd-service": "service",
    "--enable-repair": "enable_repair",
    "--crictl-path": "crictl_path",
    "--cri-socket-path": "cri_socket_path",
    "--cri-timeout": "cri_timeout",
    "--cooldown-time": "cooldown_time",
    "--loopback-time": "loopback_time",
    "--health-check-timeout": "health_check_timeout",
    "--log-pattern": "log_pattern",
}
# Our checkers' own flags, by component-independent arity (a test keeps this in step with the
# checkers' declarations): the first pass over argv must know which ones take a value.
EXTRA_BOOL_FLAGS = ("--dry-run-repair", "--use-crictl", "--require-network-ready")
EXTRA_VALUE_FLAGS = (
    "--state-dir",
    "--systemctl",
    "--journalctl",
    "--journal-directory",
    "--journal-backend",
    "--docker-socket",
    "--kube-proxy-path",
)
# NPD reads a negative duration in these flags exactly as 0 (``uptime > cooldown``,
# ``loopback > 0``, a client or context timeout of <= 0), so the drop-in turns it into 0.
NEGATIVE_IS_ZERO = ("cooldown_time", "loopback_time", "health_check_timeout")
UNSUPPORTED = (
    "the component specified is not supported. "
    "Supported components are : <kubelet/docker/cri/kube-proxy>"
)
USAGE = f"""usage: {PROG} [flags]   (NPD health-checker compatible)
  --component string             kubelet, docker, cri or kube-proxy (default "kubelet")
  --service string               the systemd unit (default: the component; containerd for cri)
  --enable-repair                repair an unhealthy component (default true)
  --cooldown-time duration       repair only a service up longer than this (default 2m0s)
  --loopback-time duration       log-pattern window, 0 = since the service started (default 0s)
  --health-check-timeout duration  probe timeout (default 10s)
  --log-pattern count:regex      unhealthy at count journal matches; repeatable
  --cri-socket-path string       CRI endpoint (default "unix:///var/run/containerd/containerd.sock")
  --cri-timeout duration         timeout of each CRI call (default 2s)
  --crictl-path string           crictl, used only with --use-crictl (default "/usr/bin/crictl")
  -v, --v int                    log verbosity; > 0 writes diagnostics to stderr
  our additions: --dry-run-repair, --state-dir, --systemctl, --journalctl, --journal-directory,
  --journal-backend, --docker-socket, --use-crictl, --require-network-ready, --kube-proxy-path
Environment: HOST_ADDRESS (localhost), KUBELET_PORT (10248), KUBEPROXY_PORT (10256)."""


class _NonNegative:
    """A duration Option read as NPD reads it: a negative value counts as 0."""

    __slots__ = ("opt",)

    def __init__(self, opt) -> None:
        self.opt = opt

    def __getattr__(self, name):
        return getattr(self.opt, name)

    def parse(self, text: str):
        return self.opt.parse("0" if parse_duration(text) < 0 else text)


def _flag_table(checker) -> dict[str, tuple[str, object]]:
    """``--flag`` -> (option name, Option) for NPD's flags and the checker's own options."""
    by_name = {opt.name: opt for opt in checker.options}
    table: dict[str, tuple[str, object]] = {}
    for opt in checker.options:
        for flag in (opt.flag, *opt.aliases):
            table[flag] = (opt.name, _NonNegative(opt) if opt.name in NEGATIVE_IS_ZERO else opt)
    for flag, name in NPD_FLAGS.items():
        if flag in table:
            continue
        if name in by_name:
            table[flag] = (name, by_name[name])
        else:
            table[flag] = ("", _npd_option(name))  # parsed, type-checked, then dropped
    table["--component"] = ("component", None)
    return table


def _npd_option(name: str):
    """NPD's own declaration of one of its flags: its pflag type, no bounds of ours."""
    kinds = {
        "enable_repair": "bool",
        "cri_timeout": "duration",
        "cooldown_time": "duration",
        "loopback_time": "duration",
        "health_check_timeout": "duration",
    }
    if name == "log_pattern":
        return Option(name, type=parse_log_patterns, multiple=True)
    return Option(name, type=kinds.get(name, "str"))


def _npd_table() -> dict[str, tuple[str, object]]:
    """Every flag any component takes, typed as NPD types it: the first pass over argv."""
    table: dict[str, tuple[str, object]] = {
        flag: (name, _npd_option(name)) for flag, name in NPD_FLAGS.items()
    }
    table["--component"] = ("component", None)
    for flag in EXTRA_BOOL_FLAGS:
        table[flag] = ("", Option("extra", type="bool"))
    for flag in EXTRA_VALUE_FLAGS:
        table[flag] = ("", None)
    return table


def parse(argv: list[str], checker) -> tuple[dict, int]:
    """pflag's parse of ``argv``: the checker option values set, and the klog verbosity."""
    return parse_flags(argv, _flag_table(checker), KLOG_FLAGS)


def _help() -> int:
    print(USAGE, file=sys.stderr)  # pflag's usage goes to stderr; stdout stays the protocol's
    return 0


def _is_valid(component: str, values: dict) -> None:
    """NPD's IsValid (after SetDefaults), with its wording."""
    if component not in COMPONENTS:
        raise FlagError(UNSUPPORTED)
    if component == "cri":
        # Only a flag given empty is refused: the defaults (the cri checker's) are not empty.
        if values.get("crictl_path") == "":
            raise FlagError("the crictl-path cannot be empty for cri component")
        if values.get("cri_socket_path") == "":
            raise FlagError("the cri-socket-path cannot be empty for cri component")


def prepare(argv: list[str]):
    """Parse and validate ``argv`` as NPD does: ``(component, checker, options, verbosity)``.

    Raises :class:`FlagError` (pflag's or NPD's words) or :class:`HelpRequested`. NPD's own
    parse over every flag comes first (its errors come before any validation), then IsValid,
    then the chosen component's checker reads its options.
    """
    npd_values, _ = parse_flags(argv, _npd_table(), KLOG_FLAGS)
    component = npd_values.get("component", "kubelet")
    _is_valid(component, npd_values)
    try:
        checker = find_checker(component)
    except LookupError as exc:
        raise FlagError(f"error checking {component} health: {exc}") from None
    values, verbosity = parse(argv, checker)
    values.pop("component", None)
    try:
        options = checker.parse_options(given=values)
    except OptionError as exc:
        raise FlagError(exc.reason) from None
    return component, checker, options, verbosity


def run(argv: list[str]) -> int:
    """Parse, validate and run one health check; return the exit code."""
    try:
        component, checker, options, verbosity = prepare(argv)
    except HelpRequested:
        return _help()
    outcome = run_checker(checker, options, verbose=verbosity > 0)
    result = outcome.result
    message = result.message
    prefix = f"error checking {component} health: "
    if result.status == 2 and not message.startswith(prefix):
        message = prefix + message  # a deadline or a crash inside the check: NPD's error form
    message = one_line(message, RESULT_LIMIT)
    if message:
        print(message)
    return int(result.status)


def main(argv=None) -> int:
    """Entry point of the ``health-checker`` console script.

    A usage error is one line of at most 80 bytes on stdout (NPD's condition message), exit 2.
    """
    return console_main(run, argv, prog=PROG, on_usage_error=report_usage_error)


if __name__ == "__main__":
    sys.exit(main())
