"""Fleet scale (issue 16), the APF figure: does packaging/kubernetes/flowcontrol.yaml keep another
client's latency while thousands of agents storm the API server?

An uncontrolled storm (``bench/fleet.py``'s NPD model: every node flips a condition and back
within 10 s, no client-side limit, no spread) runs against a deliberately small kube-apiserver
(``--max-requests-inflight=10``, ``--max-mutating-requests-inflight=5``: 15 seats, so that APF
has something to share) while *another client* (a kube-system ServiceAccount, which lands in the
``workload-high`` level like the kube-system controllers) GETs a node every 50 ms. Figure: that
client's p99 during the storm over its p99 in the 15 s before it, without and with the
FlowSchema.

The other client runs in its own process (``--victim`` mode of this script), as a controller
would: a thread of the fleet's process would measure the fleet's GIL, not the server.

On a small machine the fleet, the apiserver and etcd also fight for CPU, which APF cannot help
with. ``--pin`` separates the two causes: ``pinned`` puts the fleet's process on the first CPU
and kube-apiserver, etcd and the other client on the rest (every thread, with
``os.sched_setaffinity``), ``unpinned`` lets the scheduler place them; ``both`` measures each.

    .venv/bin/python bench/fleet_apf.py --nodes 500 --pin both --json /tmp/apf.json
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import fleet  # bench/fleet.py, beside this script; it puts tests/ (envtest) on the path

Envtest, EnvtestError, Identity = fleet.Envtest, fleet.EnvtestError, fleet.Identity

REPO = fleet.REPO
FLOWCONTROL = REPO / "packaging" / "kubernetes" / "flowcontrol.yaml"
VICTIM = Identity(
    "victim",
    "system:serviceaccount:kube-system:bench-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
    "",
)
VICTIM_RBAC = """
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: bench-controller}
rules: [{apiGroups: [""], resources: ["nodes"], verbs: ["get"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bench-controller}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bench-controller}
subjects: [{kind: ServiceAccount, name: bench-controller, namespace: kube-system}]
"""
UNLOADED_S = 15.0
BUSY_S = 15.0


def victim_loop(port: int, ca: str, token: str, path: str, period: float, out: Path) -> None:
    """The other client (child process): one GET every ``period`` s on a kept-alive
    connection; one line per answer, ``start-monotonic seconds status``, until killed."""
    context = ssl.create_default_context(cafile=ca)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    conn = None
    with out.open("a", buffering=1) as fh:
        while True:
            if conn is None:
                conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context)
            t0 = time.monotonic()
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
                fh.write(f"{t0:.6f} {time.monotonic() - t0:.6f} {response.status}\n")
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = None
            time.sleep(period)


class Victim:
    """The other client as a child process; ``mark`` names moments, ``p99`` reads between two."""

    def __init__(self, env: Envtest, path: str, workdir: Path) -> None:
        self.samples_file = workdir / "victim.samples"
        self.samples_file.write_text("")
        token_file = workdir / "victim.token"
        token_file.write_text(env.identities["victim"].token)
        token_file.chmod(0o600)
        self.marks: dict[str, float] = {}
        # The token goes through a file, never the command line (visible in /proc to everyone).
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--victim", str(env.port), str(env.ca_file),
             str(token_file), path, str(self.samples_file)],
        )  # fmt: skip

    def mark(self, name: str) -> None:
        self.marks[name] = time.monotonic()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def p99(self, start: str, end: str, span: float | None = None) -> dict:
        """Latency figures between two marks (or ``span`` seconds from the first)."""
        lo, hi = self.marks[start], self.marks[end]
        if span is not None:
            hi = min(hi, lo + span)
        rows = []
        for line in self.samples_file.read_text().splitlines():
            t0, latency, status = line.split()
            if lo <= float(t0) < hi:
                rows.append((float(latency), int(status)))
        lat = sorted(r[0] for r in rows)
        if not lat:
            return {"samples": 0}
        return {
            "samples": len(lat),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 1),
            "non_200": sum(1 for r in rows if r[1] != 200),
        }


def set_affinity(pid: int | None, cpus: set[int]) -> None:
    """Every thread of ``pid`` on ``cpus`` (threads it starts later inherit it)."""
    if pid is None:
        return
    for task in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(task), cpus)


def pin(server: fleet.Server, victim: Victim, pinned: bool) -> dict:
    everything = set(range(os.cpu_count() or 1))
    if not pinned or len(everything) < 2:
        fleet_cpus = server_cpus = everything
    else:
        fleet_cpus, server_cpus = {0}, everything - {0}
    set_affinity(os.getpid(), fleet_cpus)
    for pid in (server.apiserver_pid, server.etcd_pid, victim.process.pid):
        set_affinity(pid, server_cpus)
    return {"fleet_cpus": sorted(fleet_cpus), "server_cpus": sorted(server_cpus)}


def experiment(workdir: Path, n: int, pin_modes: list[bool], args, out: list) -> list[dict]:
    """Per pin mode, an uncontrolled storm without then with the FlowSchema; victim p99s."""
    env = Envtest(
        workdir / "apf",
        extra_flags=("--max-requests-inflight=10", "--max-mutating-requests-inflight=5"),
    )
    env.identities["victim"] = Identity(
        VICTIM.key, VICTIM.user, VICTIM.groups, os.urandom(16).hex()
    )
    results = []
    with env:
        env.start()
        env.kubectl("apply", "-f", str(REPO / "packaging" / "kubernetes" / "rbac.yaml"))
        env.kubectl("apply", "-f", "-", input=VICTIM_RBAC)
        server = fleet.Server(env)
        names = fleet.ensure_nodes(env, n, [])
        victim = Victim(env, f"/api/v1/nodes/{names[0]}", workdir)
        try:
            for pinned in pin_modes:
                cpus = pin(server, victim, pinned)
                for with_schema in (False, True):
                    verb = "apply" if with_schema else "delete"
                    extra = () if with_schema else ("--ignore-not-found",)
                    env.kubectl(verb, "-f", str(FLOWCONTROL), *extra)
                    time.sleep(3)  # APF reads FlowSchemas from an informer
                    victim.mark("unloaded")
                    time.sleep(UNLOADED_S)
                    victim.mark("loaded")
                    label = (
                        f"apf-{'pinned' if pinned else 'unpinned'}-"
                        f"{'with' if with_schema else 'without'}-flowschema"
                    )
                    storm = fleet.phase_storm(server, env, names, "npd", args, out, victim, label)
                    row = {
                        "pinned": pinned,
                        **cpus,
                        "flowschema": with_schema,
                        "victim_unloaded": victim.p99("unloaded", "loaded"),
                        "victim_during_storm": victim.p99("storm", "after"),
                        # the flips themselves (10 s) and 5 s of their retries: the busiest part
                        "victim_first_15s": victim.p99("storm", "after", BUSY_S),
                        "storm_codes": storm["codes"],
                        "storm_p99_ms": storm["p99_ms"],
                        "storm_peak_5s_per_s": storm["peak_5s_per_s"],
                    }
                    u = row["victim_unloaded"].get("p99_ms")
                    s = row["victim_during_storm"].get("p99_ms")
                    row["victim_p99_ratio"] = round(s / u, 2) if u and s else None
                    b = row["victim_first_15s"].get("p99_ms")
                    row["victim_p99_ratio_first_15s"] = round(b / u, 2) if u and b else None
                    results.append(row)
                    print(json.dumps({"apf": row}), flush=True)
        finally:
            victim.stop()
            set_affinity(os.getpid(), set(range(os.cpu_count() or 1)))
    return results


def markdown(rows: list[dict]) -> str:
    lines = [
        "| CPUs | FlowSchema | other client p50 / p99 ms unloaded | storm (80 s) | p99 ratio "
        "| first 15 s | p99 ratio | storm answers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        u, s, b = r["victim_unloaded"], r["victim_during_storm"], r["victim_first_15s"]
        cpus, schema = (
            "pinned" if r["pinned"] else "shared",
            "with" if r["flowschema"] else "without",
        )
        lines.append(
            f"| {cpus} | {schema} "
            f"| {u.get('p50_ms')} / {u.get('p99_ms')} | {s.get('p50_ms')} / {s.get('p99_ms')} "
            f"| {r['victim_p99_ratio']} | {b.get('p50_ms')} / {b.get('p99_ms')} "
            f"| {r['victim_p99_ratio_first_15s']} | {r['storm_codes']} |"
        )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "--victim":
        port, ca, token_file, path, out = sys.argv[2:]
        token = Path(token_file).read_text().strip()
        victim_loop(int(port), ca, token, path, 0.05, Path(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--pin", choices=("pinned", "unpinned", "both"), default="both")
    parser.add_argument("--storm-window", type=float, default=80.0)
    parser.add_argument("--nodes-per-client", type=int, default=5)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    modes = {"pinned": [True], "unpinned": [False], "both": [False, True]}[args.pin]
    fleet.agent_main.log = lambda message: None
    threading.stack_size(256 << 10)
    records: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="fleet-apf-") as tmp:
        try:
            rows = experiment(Path(tmp), args.nodes, modes, args, records)
        except EnvtestError as exc:
            raise SystemExit(f"fleet_apf: {exc}") from None
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "records": records}, indent=1))


if __name__ == "__main__":
    main()
