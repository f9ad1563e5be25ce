"""Find the real binaries beside the checkout (``../shared/``), unpacked and checksummed.

``../shared/<kind>/`` holds xz-compressed binaries and a ``SHA256SUMS`` of the decompressed
files (kinds: ``envtest``: kube-apiserver, kubectl; ``cluster``: kubelet, controller manager,
scheduler, pause; ``npd``: NPD's own health-checker, log-counter and daemon). They are unpacked
once into a cache folder (``$NODE_HEALTHCHECK_ASSETS_CACHE``, default
``~/.cache/node-healthcheck/assets``) and checked against the sums; a folder that already holds
them with the right sums is reused.

An environment variable points straight at a ready folder instead and wins over ``../shared``:
``KUBEBUILDER_ASSETS`` for envtest (controller-runtime's convention: kube-apiserver, etcd and
kubectl in one folder), ``NPD_ASSETS`` for npd, ``CLUSTER_ASSETS`` for cluster. For envtest the
folder also gets a link to Debian's ``etcd`` when one is installed and the folder lacks it.

Used by the test fixtures and by ``.ci/run``::

    python3 tests/shared_assets.py envtest   # prints the folder, exit 2 with one line if absent
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NODE_HEALTHCHECK_SHARED", REPO.parent / "shared"))
ENV_VARS = {"envtest": "KUBEBUILDER_ASSETS", "npd": "NPD_ASSETS", "cluster": "CLUSTER_ASSETS"}
# What each kind must hold to be usable (etcd comes from Debian's etcd-server, not ../shared).
REQUIRED = {
    "envtest": ("kube-apiserver", "kubectl", "etcd"),
    "npd": ("health-checker", "log-counter", "node-problem-detector"),
    "cluster": ("kubelet", "kube-controller-manager", "kube-scheduler", "pause"),
}


class AssetsMissing(Exception):
    """The binaries of a kind are not on this machine; the message says how to get them."""


def shared_present(kind: str) -> bool:
    """True when ``../shared/<kind>/`` exists with its checksums (so a skip would hide a gap)."""
    return (SHARED / kind / "SHA256SUMS").is_file()


def cache_root() -> Path:
    default = Path.home() / ".cache" / "node-healthcheck" / "assets"
    return Path(os.environ.get("NODE_HEALTHCHECK_ASSETS_CACHE", default))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sums(kind: str) -> dict[str, str]:
    sums = {}
    for line in (SHARED / kind / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*")] = digest
    return sums


def _unpack(kind: str) -> Path:
    target = cache_root() / kind
    target.mkdir(parents=True, exist_ok=True)
    for name, digest in _sums(kind).items():
        dest = target / name
        if dest.is_file() and _sha256(dest) == digest:
            continue
        partial = target / f".{name}.partial"
        with partial.open("wb") as out:
            subprocess.run(["xz", "-dc", str(SHARED / kind / f"{name}.xz")], stdout=out, check=True)
        if _sha256(partial) != digest:
            partial.unlink()
            raise AssetsMissing(f"{SHARED / kind / name}.xz does not match SHA256SUMS")
        partial.chmod(0o755)
        partial.replace(dest)
    return target


def _link_etcd(folder: Path) -> None:
    etcd = folder / "etcd"
    if etcd.exists():
        return
    found = shutil.which("etcd")
    if found and os.access(folder, os.W_OK):
        etcd.symlink_to(found)


def assets(kind: str) -> Path:
    """The folder holding ``kind``'s binaries, unpacking them first if needed.

    Raises :class:`AssetsMissing` with a one-line explanation when they cannot be had.
    """
    var = ENV_VARS[kind]
    if os.environ.get(var):
        folder = Path(os.environ[var])
    elif shared_present(kind):
        folder = _unpack(kind)
    else:
        raise AssetsMissing(
            f"no {kind} binaries: set {var} to a folder holding {', '.join(REQUIRED[kind])}, "
            f"or put node-healthcheck's shared/{kind}/ beside the checkout"
        )
    if kind == "envtest":
        _link_etcd(folder)
    missing = [name for name in REQUIRED[kind] if not (folder / name).exists()]
    if missing:
        hint = " (apt-get install etcd-server)" if "etcd" in missing else ""
        raise AssetsMissing(f"{folder} lacks {', '.join(missing)}{hint}")
    return folder


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in ENV_VARS:
        print(f"usage: shared_assets.py {{{'|'.join(ENV_VARS)}}}", file=sys.stderr)
        return 2
    try:
        print(assets(argv[0]))
    except (AssetsMissing, OSError, subprocess.CalledProcessError) as exc:
        print(f"shared_assets: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
