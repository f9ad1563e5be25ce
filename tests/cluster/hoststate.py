"""What a kubelet changes on the host, recorded before a cluster starts and undone after it.

The kubelet rewrites ``vm.overcommit_memory``, ``kernel.panic`` and ``kernel.panic_on_oops``
(there is no warn-only mode), creates cgroups (``kubepods`` under every v1 hierarchy), may add
iptables chains, and writes ``/var/lib/kubelet/device-plugins`` and ``/var/log/containers``
whatever its root folder; containerd's CNI code caches under ``/var/lib/cni``, and a DaemonSet's
``DirectoryOrCreate`` hostPath creates its folder. Other test runs share this machine (and
``healthcheck status`` reports differently once ``/var/lib/kubelet`` exists), so everything the
cluster created is removed as soon as it stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
# Host paths the kubelet, containerd or the shipped DaemonSet create outside their own folders.
WATCHED_PATHS = (
    "/var/lib/kubelet",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/cni",
    "/var/lib/node-healthcheck",
    "/run/containerd",
)
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Top-level cgroups the kubelet makes with the cgroupfs driver.
KUBELET_CGROUPS = ("kubepods",)
IPTABLES = ("iptables", "ip6tables")


def _read_sysctl(name: str) -> str | None:
    try:
        return Path("/proc/sys", name).read_text().strip()
    except OSError:
        return None


def _iptables_save(tool: str) -> list[str]:
    if shutil.which(f"{tool}-save") is None:
        return []
    proc = subprocess.run([f"{tool}-save"], capture_output=True, text=True, check=False)
    return proc.stdout.splitlines() if proc.returncode == 0 else []


def _chains_and_rules(lines: list[str]) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """(table, chain) pairs and (table, rule) lines of ``iptables-save`` output."""
    chains, rules, table = set(), [], ""
    for line in lines:
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":"):
            chains.add((table, line[1:].split()[0]))
        elif line.startswith("-A "):
            rules.append((table, line[3:]))
    return chains, rules


def kubelet_cgroups() -> list[Path]:
    """Every kubelet cgroup folder that exists now, under each v1 hierarchy."""
    found = []
    if CGROUP_ROOT.is_dir():
        for hierarchy in CGROUP_ROOT.iterdir():
            for name in KUBELET_CGROUPS:
                path = hierarchy / name
                if path.is_dir():
                    found.append(path)
    return found


def remove_cgroup_tree(top: Path) -> list[str]:
    """rmdir ``top`` and its children, deepest first; returns what could not be removed."""
    failed = []
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
        try:
            os.rmdir(dirpath)
        except FileNotFoundError:
            pass
        except OSError as exc:
            failed.append(f"{dirpath}: {exc.strerror}")
    return failed


@dataclass
class HostState:
    """The host as it was before a cluster started; :meth:`restore` puts it back."""

    sysctls: dict[str, str | None] = field(default_factory=dict)
    absent_paths: list[str] = field(default_factory=list)
    cgroups_before: set[str] = field(default_factory=set)
    iptables: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def capture(cls) -> HostState:
        return cls(
            sysctls={name: _read_sysctl(name) for name in SYSCTLS},
            absent_paths=[p for p in WATCHED_PATHS if not os.path.lexists(p)],
            cgroups_before={str(p) for p in kubelet_cgroups()},
            iptables={tool: _iptables_save(tool) for tool in IPTABLES},
        )

    def changes(self) -> list[str]:
        """What differs from the captured state now (empty once :meth:`restore` succeeded)."""
        found = []
        for name, value in self.sysctls.items():
            now = _read_sysctl(name)
            if now != value:
                found.append(f"sysctl {name.replace('/', '.')} is {now}, was {value}")
        found += [f"{p} was created" for p in self.absent_paths if os.path.lexists(p)]
        found += [
            f"cgroup {p} was created"
            for p in map(str, kubelet_cgroups())
            if p not in self.cgroups_before
        ]
        for tool, before in self.iptables.items():
            old_chains, old_rules = _chains_and_rules(before)
            new_chains, new_rules = _chains_and_rules(_iptables_save(tool))
            found += [f"{tool} chain {t}/{c} was added" for t, c in new_chains - old_chains]
            found += [
                f"{tool} rule {t}: {r} was added" for t, r in new_rules if (t, r) not in old_rules
            ]
        return found

    def restore(self) -> list[str]:
        """Undo every change; returns what could not be undone (one line each)."""
        problems = []
        for name, value in self.sysctls.items():
            if value is not None and _read_sysctl(name) != value:
                try:
                    Path("/proc/sys", name).write_text(value)
                except OSError as exc:
                    problems.append(f"sysctl {name}: {exc.strerror}")
        for tool, before in self.iptables.items():
            problems += self._restore_iptables(tool, before)
        for path in map(Path, (p for p in map(str, kubelet_cgroups()))):
            if str(path) not in self.cgroups_before:
                problems += remove_cgroup_tree(path)
        for path in self.absent_paths:
            if os.path.lexists(path):
                problems += _remove_path(Path(path))
        return problems

    @staticmethod
    def _restore_iptables(tool: str, before: list[str]) -> list[str]:
        old_chains, old_rules = _chains_and_rules(before)
        new_chains, new_rules = _chains_and_rules(_iptables_save(tool))
        problems = []
        for table, rule in new_rules:
            if (table, rule) not in old_rules:
                proc = subprocess.run(
                    [tool, "-t", table, "-D", *rule.split()], capture_output=True, check=False
                )
                if proc.returncode != 0:
                    problems.append(f"{tool} -t {table} -D {rule}: exit {proc.returncode}")
        for table, chain in new_chains - old_chains:
            for action in ("-F", "-X"):
                proc = subprocess.run([tool, "-t", table, action, chain], capture_output=True)
                if proc.returncode != 0:
                    problems.append(f"{tool} -t {table} {action} {chain}: exit {proc.returncode}")
        return problems


def _remove_path(path: Path) -> list[str]:
    """Remove what the cluster created at ``path``; mounts below it are detached first."""
    for mount in reversed(mounts_under(path)):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        return [f"{path}: {exc.strerror}"]
    return []


def mounts_under(folder: Path) -> list[str]:
    """Mount points at or below ``folder``, outermost first."""
    prefix = str(folder)
    found = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return sorted(found, key=len)


def unmount_all_under(folder: Path) -> None:
    """Detach every mount at or below ``folder`` (pod volumes, overlay snapshots), deepest first."""
    for mount in reversed(mounts_under(folder)):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
