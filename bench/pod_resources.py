"""The DaemonSet pod's memory and CPU on a real one-node cluster, against its limits.

Starts the test cluster (tests/cluster/node.py), builds or reuses the image from
packaging/Dockerfile, applies packaging/kubernetes/ with the test overlay, and samples the
agent container's cgroup files every second for ``--duration`` seconds with every built-in
check of the shipped ConfigMap running. Prints:

- cluster start to node Ready; ``kubectl apply`` to the first of the agent's conditions on the
  node, and to the pod Ready;
- CPU: the start-up cost (CPU-seconds from container start to the first condition), the mean
  over the run and the busiest 10-second window, in millicores, against the CPU limit, and how
  many 100 ms periods the kernel throttled;
- memory: peak usage (what the limit is enforced on), peak working set (what the kubelet
  evicts on), peak anonymous RSS, against the memory limit.

``--unlimited`` replaces the shipped limits with 1 CPU / 512Mi, to see what the agent asks for
when nothing holds it back (run it beside the shipped limits to compare).

    .venv/bin/python bench/pod_resources.py --duration 600
    .venv/bin/python bench/pod_resources.py --duration 120 --unlimited
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cluster import deploy, image, node, podstats

MIB = 1 << 20
UNLIMITED = {
    "requests": {"cpu": "10m", "memory": "64Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


def first_condition(cluster, types: set[str], timeout: float) -> float:
    """Monotonic time at which one of ``types`` is first seen on the node."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = cluster.api.request("GET", f"/api/v1/nodes/{node.NODE_NAME}")
        seen = {c["type"] for c in (body.get("status") or {}).get("conditions") or []}
        if status == 200 and seen & types:
            return time.monotonic()
        time.sleep(0.05)
    raise SystemExit(f"no agent condition on the node within {timeout:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="sampling seconds")
    parser.add_argument("--unlimited", action="store_true", help="1 CPU / 512Mi instead")
    args = parser.parse_args()
    for why in (node.why_not_available(), image.why_not_available()):
        if why:
            print(f"pod_resources: {why}", file=sys.stderr)
            return 2

    import healthcheck

    workdir = Path(tempfile.mkdtemp(prefix="pod-resources-"))
    cluster = node.OneNodeCluster(workdir / "cluster")
    try:
        built = image.build(healthcheck.__version__)
        cluster.start()
        cluster.import_image(built.archive)
        types = deploy.condition_types(deploy.configmap_agent_yaml())
        applied, _overlay = deploy.deploy(
            cluster, workdir, resources=UNLIMITED if args.unlimited else None
        )
        seen = first_condition(cluster, types, 180)
        pod = deploy.wait_ready_pod(cluster, 180)
        ready = time.monotonic()
        cgroup = podstats.ContainerCgroup(podstats.container_id(pod, deploy.CONTAINER))
        at_condition = cgroup.sample()  # close enough to the first condition: read right after
        samples = [at_condition]
        end = time.monotonic() + args.duration
        while time.monotonic() < end:
            time.sleep(1.0)
            samples.append(cgroup.sample())
        restarts = deploy.agent_pods(cluster)[0]["status"]["containerStatuses"][0]["restartCount"]
        report(cluster, built, applied, seen, ready, cgroup, samples, args, restarts)
    finally:
        problems = cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        if problems:
            print("teardown left:", "; ".join(problems), file=sys.stderr)
    return 0


def report(cluster, built, applied, seen, ready, cgroup, samples, args, restarts) -> None:
    first, last = samples[0], samples[-1]
    quota = cgroup.cpu_quota_millicores()
    window = 10
    busiest = max(
        (b.cpu_ns - a.cpu_ns) / 1e9 / window * 1000
        for a, b in zip(samples, samples[window:], strict=False)
    ) if len(samples) > window else float("nan")  # fmt: skip
    seconds = max(1.0, len(samples) - 1.0)
    mean = (last.cpu_ns - first.cpu_ns) / 1e9 / seconds * 1000
    limit = first.limit / MIB
    print(
        f"image: {built.name} {built.size_bytes / MIB:.1f} MiB uncompressed"
        f" ({'cached' if not built.built_seconds else f'built in {built.built_seconds:.0f} s'})"
    )
    print(f"cluster start to node Ready: {cluster.ready_seconds:.1f} s")
    print(
        f"kubectl apply to the agent's first condition on the node: {seen - applied:.1f} s; "
        f"to pod Ready: {ready - applied:.1f} s"
    )
    print(
        f"limits: cpu {'none' if quota is None else f'{quota:.0f}m'}, memory {limit:.0f} MiB"
        f"{' (--unlimited)' if args.unlimited else ''}; restarts {restarts}"
    )
    print(f"start-up CPU (container start to pod Ready): {first.cpu_ns / 1e9:.2f} CPU-s")
    print(
        f"CPU over {seconds:.0f} s: mean {mean:.1f}m, busiest {window} s {busiest:.1f}m, "
        f"throttled periods {last.throttled_periods} ({last.throttled_ns / 1e9:.1f} s)"
    )
    peak_usage = max(s.usage for s in samples) / MIB
    peak_ws = max(s.working_set for s in samples) / MIB
    peak_rss = max(s.rss for s in samples) / MIB
    print(
        f"memory peak: usage {peak_usage:.1f} MiB (cgroup max {last.max_usage / MIB:.1f}), "
        f"working set {peak_ws:.1f} MiB, rss {peak_rss:.1f} MiB; limit {limit:.0f} MiB"
    )
    print("(2-core machine shared with other test runs: CPU figures are noisy)")


if __name__ == "__main__":
    sys.exit(main())
