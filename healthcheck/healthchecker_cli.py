"""``health-checker``: a drop-in for NPD's Go health-checker binary (spec section 3).

Flags are parsed as Go's pflag parses them (``--flag=value``, ``--flag value``, bare booleans,
``--enable-repair=false`` in strconv.ParseBool syntax, klog's ``-v``/``--v`` shorthand, ``--``;
arguments that are not flags are ignored, as NPD ignores them). Every NPD flag is accepted for
every component, as NPD accepts them; the chosen checker's own extra options
(``--state-dir``, ``--dry-run-repair``, ``--docker-socket``, ...) are accepted too.

Output and exit codes are NPD's (spec 3.6): silence and 0 when healthy; the
``<component>:<service> was found unhealthy; repair flag : <bool>`` line and 1; ``error checking
<component> health: <reason>`` and 2; a bad flag's one-line error on stdout and 2.

Parsing is :mod:`healthcheck.pflag`, shared with ``log-counter``.
"""

from __future__ import annotations

import sys

from healthcheck.pflag import FlagError, last_value, wants_help
from healthcheck.pflag import parse as parse_flags

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
KLOG_FLAGS = {"--v": "int", "--vmodule": "str", "--logtostderr": "bool"}
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


def _flag_table(checker) -> dict[str, tuple[str, object]]:
    """``--flag`` -> (option name, Option) for NPD's flags and the checker's own options."""
    by_name = {opt.name: opt for opt in checker.options}
    table: dict[str, tuple[str, object]] = {}
    for opt in checker.options:
        for flag in (opt.flag, *opt.aliases):
            table[flag] = (opt.name, opt)
    for flag, name in NPD_FLAGS.items():
        if flag in table:
            continue
        if name in by_name:
            table[flag] = (name, by_name[name])
        else:
            table[flag] = ("", _foreign_option(name))  # parsed, type-checked, then dropped
    table["--component"] = ("component", None)
    return table


def _foreign_option(name: str):
    from healthcheck.declaration import Option

    kind = "duration" if name == "cri_timeout" else "str"
    return Option(name, type=kind)


def parse(argv: list[str], checker) -> tuple[dict, int]:
    """pflag's parse of ``argv``: the checker option values set, and the klog verbosity."""
    return parse_flags(argv, _flag_table(checker), KLOG_FLAGS)


def _help() -> int:
    print(USAGE)
    return 0


def run(argv: list[str]) -> int:
    """Parse, validate and run one health check; return the exit code."""
    if wants_help(argv):
        return _help()
    component = last_value(argv, "--component", "kubelet")
    if component not in COMPONENTS:
        # NPD's IsValid runs after the parse, but naming the component first is clearer.
        raise FlagError(
            f"the component specified is not supported: {component!r} "
            f"(supported: {', '.join(COMPONENTS)})"
        )
    from healthcheck import host

    try:
        checker = host.find(component).checker
    except host.CheckerNotFound as exc:
        return _fail(f"error checking {component} health: {exc}")
    values, verbosity = parse(argv, checker)
    values.pop("component", None)
    options = checker.defaults()
    for name, value in values.items():
        setattr(options, name, value)
    if checker.validate is not None:
        try:
            checker.validate(options)
        except ValueError as exc:
            raise FlagError(str(exc)) from None
    from healthcheck.protocol import clamp_message
    from healthcheck.runner import run_check

    outcome = run_check(checker, options, None, verbosity > 0)
    result = outcome.result
    message = result.message
    prefix = f"error checking {component} health: "
    if result.status == 2 and not message.startswith(prefix):
        message = prefix + message  # a deadline or a crash inside the check: NPD's error form
    message = clamp_message(message, 4096)
    if message:
        print(message)
    return int(result.status)


def _fail(message: str) -> int:
    print(message)
    return 2


def main(argv=None) -> int:
    """Entry point of the ``health-checker`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(argv)
    except FlagError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
