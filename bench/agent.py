"""The agent's cost on the node and on the API server, against the real kube-apiserver (default)
or the API double, side by side with NPD's own daemon running the same checks.

``--server real`` (default): etcd + kube-apiserver from tests/envtest.py, the shipped RBAC
applied, the agent as its ServiceAccount. NPD's daemon (``../shared/npd``, or ``$NPD_ASSETS``)
runs beside it in the same time window, as the node identity of its own Node, on the configs
``healthcheck npd-config`` generates for the same checks (health-checker/log-counter drop-ins
and ``healthcheck check`` custom plugins). Requests are counted from the apiserver's audit log.
``--server double``: the loopback API double, as before, agent only.

Phase "delay": a permanent NPD-style plugin flips between OK and problem ``--flips`` times;
prints the delay from the plugin run that saw the change to the PATCH carrying it (for NPD too
with ``--server real``).

Phase "rest": every check of config/agent.yaml at its default interval (the cri check against a
real containerd when this machine can run one, as root) plus one permanent ``/bin/true`` plugin
every 30s and the default 5m heartbeat, for ``--duration`` seconds. Prints peak RSS (VmHWM of
the daemon; and the process tree's peak, the programs it starts included, sampled every
``--sample`` s), CPU time including waited-for children, as a share of one core, and API
requests per verb after the start-up burst (the first ``--settle`` seconds).

Phase "outage" (``--outage SECONDS``, real only): the apiserver is stopped that long while the
plugin's condition changes three times; prints the time from the server's return (ready) to
the node showing the latest state, for the agent and for NPD.

Baseline in the same process: the peak RSS and CPU of a bare ``python -c`` that imports the same
client libraries and sleeps, so the ratio shows the agent's own cost.

    .venv/bin/python bench/agent.py --duration 900 --flips 10 --outage 120
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import real_containerd
from k8s_double import ApiServerDouble, write_kubeconfig

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
AGENT_NODE = "bench-node"
NATIVE_NODE = "npd-native-node"  # NPD with its own plugin binaries, as the admin identity
STATUS_PATCH = "/status"


# ------------------------------------------------------------------------------ measuring


def proc_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, its own and its waited-for children's, peak RSS KiB)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    hwm = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, hwm


class TreeSampler:
    """Samples the summed RSS of a process and all its descendants; keeps the peak, and every
    sample (KiB) in ``samples``."""

    def __init__(self, pid: int, every: float) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self._every = every
        self.peak_kib = 0
        self.peak_processes = 0
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(self._every):
            try:
                procs = [self._root, *self._root.children(recursive=True)]
            except psutil.Error:
                return
            total = 0
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.samples.append(total // 1024)
            if total // 1024 > self.peak_kib:
                self.peak_kib = total // 1024
                self.peak_processes = len(procs)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


STARTED: list[subprocess.Popen] = []  # every daemon this bench started, stopped in main()


def die_with_bench() -> None:
    """In the child before exec: be killed when the bench dies, however it dies."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def spawn(argv: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_bench,  # only prctl between fork and exec
        )
    STARTED.append(proc)
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def per_verb(calls) -> dict[str, int]:
    """Requests counted by verb and resource: ``{"PATCH nodes/status": 3, ...}``."""
    counts: dict[str, int] = {}
    for verb, path in calls:
        if path.endswith(STATUS_PATCH):
            resource = "nodes/status"
        elif "/events" in path:
            resource = "events"
        elif "/nodes/" in path:
            resource = "nodes"
        else:
            resource = path
        key = f"{verb} {resource}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# ------------------------------------------------------------------------- configurations


def all_checkers_config(path: Path, with_plugin: bool, cri_socket: str | None) -> list[str]:
    """The shipped config/agent.yaml (a stanza for every built-in checker), on free ports.

    With ``cri_socket`` the cri check talks to that runtime, as it would on a node.
    """
    import yaml

    config = yaml.safe_load((REPO / "config" / "agent.yaml").read_text())
    config["metrics"] = "127.0.0.1:0"
    config["server"] = "127.0.0.1:0"
    if cri_socket:
        for check in config["checks"]:
            if check.get("checker") == "cri":
                check.setdefault("options", {})["cri_socket_path"] = f"unix://{cri_socket}"
    names = [c.get("name", c.get("checker")) for c in config["checks"]]
    if with_plugin:
        # A permanent condition, so that the heartbeat is exercised even when every installed
        # checker is temporary; /bin/true at NPD's default 30s interval.
        config["checks"].append(
            {
                "path": "/bin/true",
                "type": "permanent",
                "condition": "BenchProblem",
                "reason": "BenchBad",
                "healthyReason": "BenchOK",
            }
        )
        names.append("/bin/true (permanent plugin)")
    path.write_text(yaml.safe_dump(config))
    return names


# The npd-config files that are config/agent.yaml's checks (systemd-monitor-counter trimmed to
# its first rule, the one agent.yaml carries).
NPD_FILES = (
    "healthcheck-conntrack.json",
    "health-checker-kubelet.json",
    "health-checker-kube-proxy.json",
    "health-checker-containerd.json",
    "healthcheck-maintenance-events.json",
    "systemd-monitor-counter.json",
    "kernel-monitor-counter.json",
)


def npd_custom_plugin(path: Path, script: str, interval: str, args=()) -> Path:
    """An NPD custom-plugin-monitor config for one permanent plugin (the BenchProblem one)."""
    path.write_text(
        json.dumps(
            {
                "plugin": "custom",
                "pluginConfig": {
                    "invoke_interval": interval,
                    "timeout": "5s",
                    "max_output_length": 80,
                    "concurrency": 1,
                },
                "source": "bench-plugin",
                "conditions": [
                    {"type": "BenchProblem", "reason": "BenchOK", "message": "bench is fine"}
                ],
                "rules": [
                    {
                        "type": "permanent",
                        "condition": "BenchProblem",
                        "reason": "BenchBad",
                        "path": script,
                        "args": list(args),
                        "timeout": "5s",
                    }
                ],
            }
        )
    )
    return path


def npd_configs(directory: Path, cri_socket: str | None, native: Path | None = None) -> list[Path]:
    """``healthcheck npd-config`` output for the same checks as the agent's rest phase; with
    ``native`` (NPD's binaries folder) its own Go health-checker and log-counter run instead of
    our drop-ins (conntrack and maintenance-events have no NPD equivalent: ours stay)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(BIN / "healthcheck"), "npd-config", "--output-dir", str(directory),
         "--command", str(BIN / "healthcheck")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    files = []
    for name in NPD_FILES:
        path = directory / name
        config = json.loads(path.read_text())
        if name == "systemd-monitor-counter.json":
            first = config["rules"][0]["condition"]
            config["rules"] = config["rules"][:1]
            config["conditions"] = [c for c in config["conditions"] if c["type"] == first]
        if name == "health-checker-containerd.json" and cri_socket:
            config["rules"][0]["args"].append(f"--cri-socket-path=unix://{cri_socket}")
        if native is not None:
            for rule in config["rules"]:
                program = Path(rule["path"]).name
                if program in ("health-checker", "log-counter"):
                    rule["path"] = str(native / program)
        path.write_text(json.dumps(config))
        files.append(path)
    files.append(npd_custom_plugin(directory / "bench-plugin.json", "/bin/true", "30s"))
    return files


def healthy_endpoint() -> int:
    """A loopback HTTP server answering 200 to every GET (a healthy kubelet or kube-proxy)."""
    import http.server

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def standin_systemctl(directory: Path) -> dict:
    """The checks' environment: a stand-in ``systemctl`` that fails (no repair touches this
    machine), and the kubelet and kube-proxy health ports on loopback servers of our own that
    answer 200, so a node at rest is healthy and no other job's kubelet on this shared machine
    (port 10248) changes what is measured."""
    directory.mkdir(exist_ok=True)
    script = directory / "systemctl"
    script.write_text("#!/bin/sh\necho 'systemctl stand-in: no systemd here' >&2\nexit 1\n")
    script.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{directory}:{env.get('PATH', '/usr/bin:/bin')}"
    env["HOST_ADDRESS"] = "127.0.0.1"
    env["KUBELET_PORT"] = str(healthy_endpoint())
    env["KUBEPROXY_PORT"] = str(healthy_endpoint())
    return env


# ------------------------------------------------------------------------- the real server


class RealServer:
    """envtest + shipped RBAC; the agent's node and NPD's node (NPD as the node identity)."""

    def __init__(self, tmp: Path) -> None:
        from envtest import Envtest

        self.env = Envtest(tmp / "envtest").start()
        self.env.kubectl("apply", "-f", str(REPO / "packaging" / "kubernetes" / "rbac.yaml"))
        self.npd_node = self.env.node_name  # the node identity may write only its own node
        for node in (AGENT_NODE, self.npd_node, NATIVE_NODE):
            self.env.create_node(node)

    def agent_kubeconfig(self) -> str:
        return str(self.env.kubeconfig("agent"))

    def npd_override(self, identity: str = "node") -> str:
        kubeconfig = self.env.kubeconfig(identity)
        return f"{self.env.url}?inClusterConfig=false&auth={kubeconfig}"

    def calls(self, identity: str, since: float = 0.0) -> list[tuple[str, str, float]]:
        verbs = {"get": "GET", "patch": "PATCH", "create": "POST", "update": "PUT"}
        found = []
        for event in self.env.audit(user=identity, since=since):
            verb = verbs.get(event["verb"], event["verb"].upper())
            found.append((verb, event["requestURI"].split("?", 1)[0], event["_at"]))
        return sorted(found, key=lambda c: c[2])

    def close(self) -> None:
        self.env.stop()


def start_npd(
    server: RealServer, configs: list[Path], env: dict, log: Path, *, native: bool = False
) -> subprocess.Popen:
    from shared_assets import assets

    daemon = assets("npd") / "node-problem-detector"
    identity, node = ("admin", NATIVE_NODE) if native else ("node", server.npd_node)
    argv = [
        str(daemon),
        f"--apiserver-override={server.npd_override(identity)}",
        f"--hostname-override={node}",
        "--config.custom-plugin-monitor=" + ",".join(str(c) for c in configs),
        "--prometheus-address=127.0.0.1",
        f"--prometheus-port={free_port()}",
        f"--port={free_port()}",
    ]
    return spawn(argv, log, env)


def free_port() -> int:
    from envtest import free_port as port

    return port()


def start_agent(config: Path, kubeconfig: str, env: dict, log: Path) -> subprocess.Popen:
    argv = [str(BIN / "healthcheck"), "agent", "--config", str(config)]
    argv += ["--kubeconfig", kubeconfig, "--node-name", AGENT_NODE]
    return spawn(argv, log, env)


def usage_report(pid: int, sampler: TreeSampler, duration: float, settled) -> dict:
    cpu, hwm = proc_usage(pid)
    cpu_settled, hwm_settled, _settle = settled
    return {
        "peak_rss_mib": round(hwm / 1024, 1),
        "peak_rss_mib_after_start": round(hwm_settled / 1024, 1),
        "peak_tree_rss_mib_sampled": round(sampler.peak_kib / 1024, 1),
        "peak_tree_processes": sampler.peak_processes,
        "cpu_seconds_with_children": round(cpu, 2),
        "cpu_share_of_one_core_pct": round(100 * cpu / duration, 3),
        "cpu_share_after_start_pct": round(
            100 * (cpu - cpu_settled) / max(1e-9, duration - settled[2]), 3
        ),
    }


def run_rest_real(tmp: Path, args, cri_socket: str | None, with_npd: bool) -> dict:
    server = RealServer(tmp)
    env = standin_systemctl(tmp / "standin")
    try:
        config = tmp / "rest.yaml"
        names = all_checkers_config(config, not args.no_plugin, cri_socket)
        started = time.time()
        procs = {"agent": start_agent(config, server.agent_kubeconfig(), env, tmp / "agent.log")}
        if with_npd:
            configs = npd_configs(tmp / "npd-configs", cri_socket)
            procs["npd"] = start_npd(server, configs, env, tmp / "npd.log")
        if with_npd and args.npd_native:
            from shared_assets import assets

            configs = npd_configs(tmp / "npd-native", cri_socket, native=assets("npd"))
            procs["npd_native"] = start_npd(server, configs, env, tmp / "native.log", native=True)
        samplers = {k: TreeSampler(p.pid, args.sample) for k, p in procs.items()}
        time.sleep(args.settle)
        for key, proc in procs.items():
            if proc.poll() is not None:
                raise SystemExit(f"{key} exited with {proc.returncode}: see {tmp}/{key}.log")
        settled = {k: (*proc_usage(p.pid), args.settle) for k, p in procs.items()}
        time.sleep(max(0.0, args.duration - args.settle))
        report: dict = {"checks": names, "duration_s": args.duration}
        identities = {"agent": "agent", "npd": "node", "npd_native": "admin"}
        for key, proc in procs.items():
            samplers[key].stop()
            report[key] = usage_report(proc.pid, samplers[key], args.duration, settled[key])
        for proc in procs.values():
            stop_process(proc)
        # Every count before the bench's own (admin) reads of the nodes below.
        for key in procs:
            calls = server.calls(identities[key], since=started)
            after = [(v, p) for v, p, at in calls if at >= started + args.settle]
            report[key]["api_requests_total"] = len(calls)
            report[key]["api_requests_after_settle_per_verb"] = per_verb(after)
        for key in procs:
            node = {"agent": AGENT_NODE, "npd": server.npd_node, "npd_native": NATIVE_NODE}[key]
            report[key]["conditions"] = {
                t: c["status"] for t, c in server.env.node_conditions(node).items()
            }
        return report
    finally:
        server.close()


FLIP = """#!/bin/sh
if [ -e "{flag}" ]; then state=bad; else state=ok; fi
echo "$(date +%s.%N) $state" >> "{log}"
if [ $state = bad ]; then echo "flag present"; exit 1; fi
echo "no flag"
"""


def flip_script(tmp: Path, who: str) -> tuple[Path, Path, Path]:
    flag, log = tmp / f"flag-{who}", tmp / f"flip-{who}.log"
    script = tmp / f"flip-{who}.sh"
    script.write_text(FLIP.format(flag=flag, log=log))
    script.chmod(0o755)
    return script, flag, log


def flip_agent_config(tmp: Path, script: Path, interval: str) -> Path:
    config = tmp / "delay.yaml"
    config.write_text(
        "metrics: ''\nserver: ''\nchecks:\n"
        f"  - path: {script}\n    type: permanent\n    condition: BenchProblem\n"
        f"    reason: BenchBad\n    healthyReason: BenchOK\n    interval: {interval}\n"
    )
    return config


def first_seen(log: Path, state: str, after: float) -> float | None:
    times = [
        float(line.split()[0])
        for line in log.read_text().splitlines()
        if line.endswith(state) and float(line.split()[0]) > after
    ]
    return min(times) if times else None


def wait_until(predicate, timeout: float, poll: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(poll)
    return False


def run_delay_real(tmp: Path, flips: int, interval: str, with_npd: bool) -> dict:
    """Flip both plugins together; the delay is plugin run -> first status PATCH after it."""
    server = RealServer(tmp)
    try:
        who = ["agent", *(["npd"] if with_npd else [])]
        scripts = {w: flip_script(tmp, w) for w in who}
        procs = {
            "agent": start_agent(
                flip_agent_config(tmp, scripts["agent"][0], interval),
                server.agent_kubeconfig(),
                dict(os.environ),
                tmp / "agent-delay.log",
            )
        }
        if with_npd:
            config = npd_custom_plugin(tmp / "npd-flip.json", str(scripts["npd"][0]), interval)
            procs["npd"] = start_npd(server, [config], dict(os.environ), tmp / "npd-delay.log")
        nodes = {"agent": AGENT_NODE, "npd": server.npd_node}
        identities = {"agent": "agent", "npd": "node"}

        def shows(key: str, status: str) -> bool:
            cond = server.env.node_conditions(nodes[key]).get("BenchProblem")
            return bool(cond) and cond["status"] == status

        for key in who:
            wait_until(lambda key=key: shows(key, "False"), 30, 0.2)
        delays: dict[str, list] = {key: [] for key in who}
        want = "False"
        for _ in range(flips):
            toggled = time.time()
            want, state = ("True", "bad") if want == "False" else ("False", "ok")
            for key in who:
                flag = scripts[key][1]
                flag.touch() if want == "True" else flag.unlink()
            for key in who:
                if not wait_until(lambda key=key, want=want: shows(key, want), 30, 0.1):
                    delays[key].append(None)
                    continue
                seen = first_seen(scripts[key][2], state, toggled)
                patches = [
                    at
                    for verb, path, at in server.calls(identities[key], since=seen or toggled)
                    if verb == "PATCH" and path.endswith(STATUS_PATCH)
                ]
                delays[key].append(round(min(patches) - seen, 3) if patches and seen else None)
            time.sleep(1.0)
        for proc in procs.values():
            stop_process(proc)
        report = {}
        for key in who:
            measured = [d for d in delays[key] if d is not None]
            report[key] = {
                "flips": flips,
                "delays_s": delays[key],
                "max_delay_s": max(measured) if measured else None,
                "mean_delay_s": round(sum(measured) / len(measured), 3) if measured else None,
            }
        return report
    finally:
        server.close()


def run_outage_real(tmp: Path, seconds: float, with_npd: bool) -> dict:
    """The apiserver away ``seconds`` while the plugin flips three times; time to latest state."""
    server = RealServer(tmp)
    try:
        who = ["agent", *(["npd"] if with_npd else [])]
        scripts = {w: flip_script(tmp, f"outage-{w}") for w in who}
        procs = {
            "agent": start_agent(
                flip_agent_config(tmp, scripts["agent"][0], "1s"),
                server.agent_kubeconfig(),
                dict(os.environ),
                tmp / "agent-outage.log",
            )
        }
        if with_npd:
            config = npd_custom_plugin(tmp / "npd-outage.json", str(scripts["npd"][0]), "1s")
            procs["npd"] = start_npd(server, [config], dict(os.environ), tmp / "npd-outage.log")
        nodes = {"agent": AGENT_NODE, "npd": server.npd_node}

        def shows(key: str, status: str) -> bool:
            cond = server.env.node_conditions(nodes[key]).get("BenchProblem")
            return bool(cond) and cond["status"] == status

        for key in who:
            wait_until(lambda key=key: shows(key, "False"), 30, 0.2)
        server.env.stop_apiserver()
        for step in range(3):
            time.sleep(seconds / 3)
            for key in who:
                flag = scripts[key][1]
                flag.unlink() if step == 1 else flag.touch()
        server.env.start_apiserver()
        returned = time.monotonic()
        report: dict = {"outage_s": seconds}
        pending = set(who)
        while pending and time.monotonic() - returned < 120:
            for key in sorted(pending):
                if shows(key, "True"):
                    report[f"{key}_latest_state_after_return_s"] = round(
                        time.monotonic() - returned, 2
                    )
                    pending.discard(key)
            time.sleep(0.1)
        for key in pending:
            report[f"{key}_latest_state_after_return_s"] = None
        for key, proc in procs.items():
            report[f"{key}_still_running"] = proc.poll() is None
            stop_process(proc)
        return report
    finally:
        server.close()


# ------------------------------------------------------------------------------ the double


def run_rest_double(tmp: Path, args, cri_socket: str | None) -> dict:
    double = ApiServerDouble()
    double.add_node(AGENT_NODE)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", double.url)
    config = tmp / "rest.yaml"
    names = all_checkers_config(config, not args.no_plugin, cri_socket)
    started = time.monotonic()
    agent = start_agent(config, kubeconfig, standin_systemctl(tmp / "standin"), tmp / "agent.log")
    sampler = TreeSampler(agent.pid, args.sample)
    time.sleep(args.settle)
    if agent.poll() is not None:
        raise SystemExit(f"the agent exited with {agent.returncode}: see {tmp}/agent.log")
    settled = (*proc_usage(agent.pid), args.settle)
    time.sleep(max(0.0, args.duration - args.settle))
    sampler.stop()
    report = usage_report(agent.pid, sampler, args.duration, settled)
    stop_process(agent)
    writes = double.writes(since=started + args.settle)
    report["api_requests_total"] = len(double.requests)
    report["api_requests_after_settle_per_verb"] = per_verb(
        [(r.method, r.path) for r in double.requests if r.at >= started + args.settle]
    )
    report["api_writes_after_settle_detail"] = [f"{r.method} {r.path}" for r in writes]
    conditions = double.nodes[AGENT_NODE]["status"].get("conditions", [])
    report["conditions"] = {c["type"]: c["status"] for c in conditions}
    double.close()
    return {"checks": names, "duration_s": args.duration, "agent": report}


def run_delay_double(tmp: Path, flips: int, interval: str) -> dict:
    double = ApiServerDouble()
    double.add_node(AGENT_NODE)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig-delay", double.url)
    script, flag, log = flip_script(tmp, "double")
    agent = start_agent(
        flip_agent_config(tmp, script, interval), kubeconfig, dict(os.environ), tmp / "d.log"
    )
    want = "False"
    double.wait_for(lambda d: d.nodes[AGENT_NODE]["status"].get("conditions"), 15)
    delays = []
    for _ in range(flips):
        toggled = time.time()
        want, state = ("True", "bad") if want == "False" else ("False", "ok")
        flag.touch() if want == "True" else flag.unlink()

        def carrying(r, want=want, toggled=toggled):
            body = r.body.decode().replace('":"', '": "')
            return r.path.endswith(STATUS_PATCH) and r.wall > toggled and f'"{want}"' in body

        if not double.wait_for(lambda d, c=carrying: any(c(r) for r in d.requests), 30):
            delays.append(None)
            continue
        seen = first_seen(log, state, toggled)
        patch_at = min(r.wall for r in double.requests if carrying(r))
        delays.append(round(patch_at - seen, 3) if seen else None)
    stop_process(agent)
    double.close()
    measured = [d for d in delays if d is not None]
    return {
        "agent": {
            "flips": flips,
            "delays_s": delays,
            "max_delay_s": max(measured) if measured else None,
            "mean_delay_s": round(sum(measured) / len(measured), 3) if measured else None,
        }
    }


# ------------------------------------------------------------------------------------ main


def run_baseline(duration: float) -> dict:
    code = f"import kubernetes.client, prometheus_client, yaml, time; time.sleep({duration!r})"
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(max(0.5, duration - 0.5))
    cpu, hwm = proc_usage(proc.pid)
    proc.wait()
    return {"peak_rss_mib": round(hwm / 1024, 1), "cpu_seconds": round(cpu, 2)}


def start_runtime(tmp: Path):
    """(containerd process, its socket), or (why not, None) where containerd cannot run."""
    why = real_containerd.why_not_available()
    if why:
        return f"no runtime ({why}): the cri check fails to connect", None
    directory = tmp / "containerd"
    directory.mkdir()
    try:
        return real_containerd.start(directory)
    except RuntimeError as exc:
        return f"no runtime ({exc})", None


def npd_available() -> str | None:
    """None when NPD's daemon can be run, else why not."""
    from shared_assets import AssetsMissing, assets

    try:
        assets("npd")
    except AssetsMissing as exc:
        return str(exc)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=("real", "double"), default="real")
    parser.add_argument("--duration", type=float, default=900.0, help="rest phase seconds")
    parser.add_argument("--settle", type=float, default=15.0, help="start-up burst to ignore")
    parser.add_argument("--sample", type=float, default=0.1, help="tree RSS sampling period")
    parser.add_argument("--flips", type=int, default=10)
    parser.add_argument("--flip-interval", default="2s")
    parser.add_argument("--outage", type=float, default=0.0, help="outage seconds (real only)")
    parser.add_argument("--skip-rest", action="store_true")
    parser.add_argument("--no-npd", action="store_true", help="real server: the agent only")
    parser.add_argument(
        "--npd-native",
        action="store_true",
        help="rest phase: also NPD with its own Go health-checker/log-counter (as admin)",
    )
    parser.add_argument(
        "--no-plugin", action="store_true", help="rest phase without the permanent /bin/true"
    )
    args = parser.parse_args()
    with_npd = False
    if args.server == "real" and not args.no_npd:
        why = npd_available()
        with_npd = why is None
        if why:
            print(f"NPD side not run: {why}", file=sys.stderr)
    try:
        measure(args, with_npd)
    finally:
        for proc in STARTED:
            stop_process(proc)


def measure(args, with_npd: bool) -> None:
    report: dict = {"server": args.server, "machine": "2 cores, shared with other jobs"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        if args.flips:
            phase = tmp_path / "delay"
            phase.mkdir()
            if args.server == "real":
                report["delay"] = run_delay_real(phase, args.flips, args.flip_interval, with_npd)
            else:
                report["delay"] = run_delay_double(phase, args.flips, args.flip_interval)
            print(json.dumps({"delay": report["delay"]}), flush=True)
        if args.outage and args.server == "real":
            phase = tmp_path / "outage"
            phase.mkdir()
            report["outage"] = run_outage_real(phase, args.outage, with_npd)
            print(json.dumps({"outage": report["outage"]}), flush=True)
        if not args.skip_rest:
            phase = tmp_path / "rest"
            phase.mkdir()
            runtime, cri_socket = start_runtime(phase)
            report["cri_against"] = "a real containerd" if cri_socket else runtime
            started = datetime.now().isoformat(timespec="seconds")
            try:
                if args.server == "real":
                    report["rest"] = run_rest_real(phase, args, cri_socket, with_npd)
                else:
                    report["rest"] = run_rest_double(phase, args, cri_socket)
            finally:
                if cri_socket:
                    real_containerd.stop(runtime)
            report["rest"]["started"] = started
            report["baseline_imports_only"] = run_baseline(min(args.duration, 30.0))
            base = report["baseline_imports_only"]["peak_rss_mib"]
            agent = report["rest"]["agent"]
            report["rss_ratio_vs_imports_only"] = round(agent["peak_rss_mib"] / base, 2)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
