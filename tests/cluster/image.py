"""The agent's image, built from ``packaging/Dockerfile`` as an operator builds it.

No registry is reachable here, so the base is made locally: ``debootstrap --variant=minbase
--include=python3 bookworm`` (about a minute), packed into a tarball that is cached between runs
on the same machine, and turned into a one-layer image ``localhost/node-healthcheck-base:bookworm``
(a two-line Dockerfile: ``FROM scratch`` and ``ADD`` of the tarball). The shipped Dockerfile is
then built unchanged with ``--build-arg BASE=<that name>``.

The builder is buildah (Debian's ``buildah``): it builds a Dockerfile without a daemon, into a
storage folder of our own (``--root``/``--runroot``), with ``--isolation chroot --network
host``, so a build neither starts a service nor adds a bridge or iptables rules to the host;
BuildKit would need dockerd (and its containerd) running for the build's length. The result is
written as a docker-archive tarball that ``ctr images import`` loads into the cluster's
containerd. It is cached too, keyed by the SHA-256 of everything the build reads (Dockerfile,
base tarball, the copied sources), so an unchanged tree is not rebuilt.

No pytest in here: ``bench/pod_resources.py`` uses it as well.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cluster import hoststate

REPO = Path(__file__).resolve().parent.parent.parent
DOCKERFILE = REPO / "packaging" / "Dockerfile"
# What the Dockerfile COPYs; a change in any of them makes a new image.
SOURCES = ("pyproject.toml", "README.md", "healthcheck", "plugins", "config/agent.yaml")
BASE_NAME = "localhost/node-healthcheck-base:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# The shipped DaemonSet's image, as containerd names it after normalising "node-healthcheck:X".
IMAGE_NAME = "docker.io/library/node-healthcheck:{version}"
BUILD_TIMEOUT = 1200
# The base carries this machine's CA bundle and a pip.conf naming it, as an operator behind a
# TLS-inspecting proxy makes their base image: pip in the Dockerfile then reaches PyPI through
# the proxy here without the shipped Dockerfile knowing about it. Its own path, because a build
# stage that installs Debian's ca-certificates rewrites /etc/ssl/certs/ca-certificates.crt.
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
BASE_CA_BUNDLE = "/etc/pip-ca-bundle.crt"
BASE_DOCKERFILE = f"""FROM scratch
ADD rootfs.tar /
COPY ca-certificates.crt {BASE_CA_BUNDLE}
COPY pip.conf /etc/pip.conf
"""


class ImageError(Exception):
    """The image could not be built or imported; the message says which step and why."""


def why_not_available() -> str | None:
    """None when this machine can build the image, else why not."""
    if os.geteuid() != 0:
        return "building the image needs root (debootstrap, buildah)"
    for tool, package in (("debootstrap", "debootstrap"), ("buildah", "buildah")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    return None


def cache_dir() -> Path:
    """``$NODE_HEALTHCHECK_IMAGE_CACHE``, default ``~/.cache/node-healthcheck/images``."""
    default = Path.home() / ".cache" / "node-healthcheck" / "images"
    path = Path(os.environ.get("NODE_HEALTHCHECK_IMAGE_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (two test runs must not build the same file)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(argv: list[str], what: str, *, cwd: Path | None = None, timeout=BUILD_TIMEOUT) -> str:
    proc = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        # pip and apt put the cause in ERROR/E: lines well above the tail's generic notes.
        causes = [line for line in lines if line.lstrip().startswith(("ERROR", "E:", "error:"))]
        detail = " | ".join([*causes[:4], *lines[-3:]])
        raise ImageError(f"{what} exited {proc.returncode}: {detail[-1200:]}")
    return proc.stdout


def base_rootfs() -> Path:
    """The cached tarball of a minimal Debian with python3, made by debootstrap when missing."""
    cache = cache_dir()
    tarball = cache / f"{SUITE}-minbase-python3.tar"
    with _locked(cache / ".base.lock"):
        if tarball.is_file():
            return tarball
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            rootfs = Path(tmp) / "rootfs"
            _run(
                ["debootstrap", "--variant=minbase", "--include=python3", SUITE, str(rootfs),
                 MIRROR],
                "debootstrap",
            )  # fmt: skip
            # The base needs no package cache or lists: every build stage runs apt-get update.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for item in (rootfs / leftover).glob("*"):
                    if item.is_file():
                        item.unlink()
            partial = Path(tmp) / "base.tar"
            _run(
                ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial),
                 "."],
                "tar of the base rootfs",
            )  # fmt: skip
            partial.replace(tarball)
    return tarball


def _digest_tree(digest, root: Path, relative: str) -> None:
    path = root / relative
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if "__pycache__" in file.parts:
            continue
        digest.update(str(file.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())


def inputs_digest(base: Path) -> str:
    """SHA-256 over the Dockerfile, the base tarball's name and size, this machine's CA bundle
    and the copied sources."""
    digest = hashlib.sha256()
    digest.update(DOCKERFILE.read_bytes())
    stat = base.stat()
    digest.update(f"{base.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    digest.update(hashlib.sha256(Path(HOST_CA_BUNDLE).read_bytes()).digest())
    for relative in SOURCES:
        _digest_tree(digest, REPO, relative)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    """A built image: its docker-archive tarball and the name containerd will know it by."""

    archive: Path
    name: str
    built_seconds: float  # 0.0 when it came from the cache

    @property
    def size_bytes(self) -> int:
        """The archive's size: the image's uncompressed layers plus a few KiB of metadata."""
        return self.archive.stat().st_size


class _Buildah:
    """buildah with a storage folder of its own, removed (and unmounted) afterwards."""

    def __init__(self, workdir: Path) -> None:
        self.root = workdir / "storage"
        self.runroot = workdir / "run"

    def __call__(self, *args: str, what: str, cwd: Path | None = None) -> str:
        argv = ["buildah", "--root", str(self.root), "--runroot", str(self.runroot)]
        argv += ["--storage-driver", "overlay", *args]
        return _run(argv, what, cwd=cwd)

    def clean(self) -> None:
        with contextlib.suppress(ImageError, subprocess.TimeoutExpired):
            self("rm", "--all", what="buildah rm")
        with contextlib.suppress(ImageError, subprocess.TimeoutExpired):
            self("rmi", "--all", "--force", what="buildah rmi")
        # containers/storage bind-mounts its overlay folder onto itself; undo that first.
        hoststate.unmount_all_under(self.root)


def build(version: str) -> Image:
    """The agent image for ``version``, from the cache or built now with buildah."""
    base = base_rootfs()
    cache = cache_dir()
    name = IMAGE_NAME.format(version=version)
    archive = cache / f"node-healthcheck-{version}-{inputs_digest(base)}.tar"
    with _locked(cache / ".image.lock"):
        if archive.is_file():
            return Image(archive, name, 0.0)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            work = Path(tmp)
            buildah = _Buildah(work)
            try:
                context = work / "base-context"
                context.mkdir()
                os.link(base, context / "rootfs.tar")
                shutil.copyfile(HOST_CA_BUNDLE, context / "ca-certificates.crt")
                (context / "pip.conf").write_text(f"[global]\ncert = {BASE_CA_BUNDLE}\n")
                (context / "Dockerfile").write_text(BASE_DOCKERFILE)
                buildah("build", "--isolation", "chroot", "-t", BASE_NAME, ".",
                        what="buildah build (base)", cwd=context)  # fmt: skip
                buildah(
                    "build", "--isolation", "chroot", "--network", "host",
                    "--build-arg", f"BASE={BASE_NAME}",
                    "-f", str(DOCKERFILE), "-t", name, str(REPO),
                    what="buildah build packaging/Dockerfile",
                )  # fmt: skip
                partial = work / "image.tar"
                buildah("push", name, f"docker-archive:{partial}:{name}", what="buildah push")
            finally:
                buildah.clean()
            for old in cache.glob(f"node-healthcheck-{version}-*.tar"):
                old.unlink()  # one image per version is enough to keep
            partial.replace(archive)
        return Image(archive, name, time.monotonic() - started)


def archive_config(image: Image) -> dict:
    """The image's config (``config.User``, ``config.Env``, ...) read from its archive."""
    import json
    import tarfile

    with tarfile.open(image.archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
