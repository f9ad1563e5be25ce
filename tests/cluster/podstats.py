"""A running container's memory and CPU, read from its cgroup v1 files on the host.

The kubelet (cgroupfs driver) puts a container at ``<hierarchy>/kubepods[/<qos>]/pod<uid>/<id>``;
its ``memory.*`` and ``cpuacct.*``/``cpu.*`` files are what the limits are enforced on, so they
are the figures to compare with the limits (the kubelet's own stats are computed from them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def container_id(pod: dict, container: str) -> str:
    """The runtime's ID of ``container`` in ``pod`` (without the ``containerd://`` prefix)."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if status["name"] == container and status.get("containerID"):
            return status["containerID"].split("://", 1)[1]
    raise LookupError(f"{container} has no container ID yet")


def cgroup_dir(hierarchy: str, cid: str) -> Path:
    """The container's folder under one v1 hierarchy (``memory``, ``cpu``, ``cpuacct``)."""
    base = CGROUP_ROOT / hierarchy / "kubepods"
    for pattern in (f"pod*/{cid}", f"*/pod*/{cid}"):
        found = list(base.glob(pattern))
        if found:
            return found[0]
    raise LookupError(f"no {hierarchy} cgroup for container {cid[:12]}")


def _read_int(path: Path) -> int:
    return int(path.read_text().split()[0])


def _read_stat(path: Path) -> dict[str, int]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values


@dataclass(frozen=True)
class Sample:
    """One reading of a container's cgroup counters."""

    usage: int  # memory.usage_in_bytes: what the memory limit is checked against
    working_set: int  # usage minus inactive file pages: what the kubelet evicts on
    rss: int  # anonymous memory
    max_usage: int  # memory.max_usage_in_bytes since the cgroup was made
    limit: int  # memory.limit_in_bytes
    cpu_ns: int  # cpuacct.usage: CPU time of every task in the container
    throttled_periods: int  # cpu.stat nr_throttled
    throttled_ns: int  # cpu.stat throttled_time


class ContainerCgroup:
    """Reads one container's cgroup files; the paths are found once."""

    def __init__(self, cid: str) -> None:
        self.cid = cid
        self.memory = cgroup_dir("memory", cid)
        self.cpuacct = cgroup_dir("cpuacct", cid)
        self.cpu = cgroup_dir("cpu", cid)

    def sample(self) -> Sample:
        stat = _read_stat(self.memory / "memory.stat")
        usage = _read_int(self.memory / "memory.usage_in_bytes")
        cpu = _read_stat(self.cpu / "cpu.stat")
        return Sample(
            usage=usage,
            working_set=max(0, usage - stat.get("total_inactive_file", 0)),
            rss=stat.get("total_rss", 0),
            max_usage=_read_int(self.memory / "memory.max_usage_in_bytes"),
            limit=_read_int(self.memory / "memory.limit_in_bytes"),
            cpu_ns=_read_int(self.cpuacct / "cpuacct.usage"),
            throttled_periods=cpu.get("nr_throttled", 0),
            throttled_ns=cpu.get("throttled_time", 0),
        )

    def cpu_quota_millicores(self) -> float | None:
        """The CPU limit as the kernel enforces it (None: unlimited)."""
        quota = _read_int(self.cpu / "cpu.cfs_quota_us")
        period = _read_int(self.cpu / "cpu.cfs_period_us")
        return None if quota < 0 else 1000.0 * quota / period

    def set_memory_limit(self, limit: int) -> None:
        """Write ``memory.limit_in_bytes`` (the kernel refuses a limit below what is in use)."""
        (self.memory / "memory.limit_in_bytes").write_text(str(limit))
