"""A real one-node Kubernetes cluster on this machine, for the DaemonSet tests and benches.

etcd and kube-apiserver come from :mod:`envtest` (its own ones, with the flags a kubelet
needs added), then containerd (Debian's, with a private root, state, socket, runc root and a
loopback-only CNI config), the kubelet (``../shared/cluster``), the controller manager and the
scheduler. ``../shared/cluster/README.md`` lists the facts each setting here answers: cgroup v1
(``failCgroupV1: false``, cgroupfs), the node named ``localhost`` because a node IP may not be
loopback, ``makeIPTablesUtilChains: false``, ``restrict_oom_score_adj``, a pause image built
from the shared ``pause`` binary.

Teardown (``stop()``, also at interpreter exit) deletes every pod's containers through
containerd, stops the daemons by PID (apiserver last but one, etcd last), detaches every mount
under the work folder and undoes the host changes :mod:`cluster.hoststate` recorded. No pytest
in here: ``bench/pod_resources.py`` runs a cluster too.

    with OneNodeCluster(workdir) as cluster:   # started, node Ready
        cluster.kubectl("get", "nodes")
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import real_containerd
from envtest import Envtest, _die_with_parent, free_port, spawn_daemon

from cluster import hoststate

NODE_NAME = "localhost"
PAUSE_IMAGE = "localhost/pause:shared"
KUBELET_HEALTHZ_PORT = 10248
KUBELET_PORT = 10250
CNI_BIN_DIR = "/usr/lib/cni"
NODE_READY_TIMEOUT = 120.0
DAEMON_STOP_WAIT = 10.0

# Appended to real_containerd's config: what running pods takes (README facts 2 and 5).
CRI_CONFIG = """  sandbox_image = "{pause}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    Root = "{d}/runc"
    SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{d}/cni"
"""

# The node becomes Ready with this alone, without touching the host's network: pods then run
# with hostNetwork only, as a node agent does anyway.
CNI_CONFLIST = {
    "cniVersion": "1.0.0",
    "name": "loopback-only",
    "plugins": [{"type": "loopback"}],
}


class ClusterError(Exception):
    """The cluster could not be started or a call to it failed; the message says why."""


def why_not_available() -> str | None:
    """None when a cluster can run here, else why not (one line)."""
    if os.geteuid() != 0:
        return "a kubelet needs root"
    for tool, package in (("containerd", "containerd"), ("ctr", "containerd"), ("runc", "runc")):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install {package})"
    if not Path(CNI_BIN_DIR, "loopback").exists():
        return f"{CNI_BIN_DIR}/loopback is missing (apt-get install containernetworking-plugins)"
    return None


def pause_archive(pause_binary: Path, name: str = PAUSE_IMAGE) -> bytes:
    """A docker-archive tarball of a one-file image holding ``pause_binary`` as ``/pause``."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tar.gettarinfo(str(pause_binary), arcname="pause")
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o755
        with pause_binary.open("rb") as f:
            tar.addfile(info, f)
    layer_bytes = layer.getvalue()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/pause"], "User": "65535:65535"},
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()],
            },
        }
    ).encode()
    manifest = json.dumps(
        [{"Config": "config.json", "RepoTags": [name], "Layers": ["layer.tar"]}]
    ).encode()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for member, data in (
            ("layer.tar", layer_bytes),
            ("config.json", config),
            ("manifest.json", manifest),
        ):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive.getvalue()


def _shared_assets(kind: str) -> Path:
    from shared_assets import AssetsMissing, assets

    try:
        return assets(kind)
    except AssetsMissing as exc:
        raise ClusterError(str(exc)) from None


class OneNodeCluster:
    """etcd, apiserver, containerd, kubelet, controller manager and scheduler in ``workdir``."""

    def __init__(self, workdir: Path | str) -> None:
        self.workdir = Path(workdir).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin = _shared_assets("cluster")
        self.containerd_socket = str(self.workdir / "containerd" / "containerd.sock")
        self.api: Envtest | None = None
        self._procs: dict[str, subprocess.Popen] = {}
        self._host: hoststate.HostState | None = None
        self._registered = False
        self.ready_seconds = 0.0  # start() to node Ready

    # ----------------------------------------------------------------------- start

    def start(self) -> OneNodeCluster:
        """Start everything and wait for the node to be Ready; stops all on any failure."""
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        started = time.monotonic()
        self._host = hoststate.HostState.capture()
        try:
            self._start_api()
            self._start_containerd()
            self._start_kubelet()
            self._start_controllers()
            self.wait_node_ready(NODE_READY_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.monotonic() - started
        return self

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        proc = spawn_daemon(argv, self.workdir / f"{name}.log")
        self._procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 8) -> str:
        """The last ``lines`` lines of a daemon's log, joined on one line."""
        log = self.workdir / "containerd" / "log" if name == "containerd" else None
        try:
            text = (log or self.workdir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])[-1500:]

    def _start_api(self) -> None:
        pki = self.workdir / "kubelet-pki"
        self._make_kubelet_client_pki(pki)
        self.api = Envtest(
            self.workdir / "api",
            node_name=NODE_NAME,
            extra_flags=(
                # logs/exec reach the kubelet at the node's name, "localhost", on loopback
                "--kubelet-preferred-address-types=Hostname,InternalIP",
                f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            ),
        )
        self.api.start()

    def _make_kubelet_client_pki(self, pki: Path) -> None:
        """A CA the kubelet trusts for clients, and the apiserver's client certificate from it."""
        pki.mkdir(parents=True, exist_ok=True)
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        steps = [
            ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=kubelet-client-ca"],
            ["req", "-new", *ec, "-keyout", "apiserver-kubelet-client.key",
             "-out", "client.csr", "-subj", "/O=system:masters/CN=kube-apiserver-kubelet-client"],
            ["x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "apiserver-kubelet-client.crt", "-days", "2"],
        ]  # fmt: skip
        for args in steps:
            proc = subprocess.run(
                ["openssl", *args], cwd=pki, capture_output=True, text=True, check=False
            )
            if proc.returncode != 0:
                raise ClusterError(f"openssl {args[0]}: {proc.stderr.strip()[-300:]}")

    def _start_containerd(self) -> None:
        folder = self.workdir / "containerd"  # its state and socket: /run/containerd's part
        (folder / "cni").mkdir(parents=True, exist_ok=True)
        (folder / "cni" / "10-loopback.conflist").write_text(json.dumps(CNI_CONFLIST))
        cri = CRI_CONFIG.format(d=folder, pause=PAUSE_IMAGE, cni_bin=CNI_BIN_DIR)
        try:
            proc, socket = real_containerd.start(
                folder, cri_config=cri, preexec_fn=_die_with_parent
            )
        except RuntimeError as exc:
            raise ClusterError(str(exc)) from None
        self._procs["containerd"] = proc
        self.containerd_socket = socket
        pause = self.workdir / "pause.tar"
        pause.write_bytes(pause_archive(self.bin / "pause"))
        self.import_image(pause)

    def ctr(self, *args: str, timeout: float = 120.0) -> str:
        """``ctr`` against this cluster's containerd, namespace ``k8s.io``; raises on failure."""
        argv = ["ctr", "--address", self.containerd_socket, "-n", "k8s.io", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise ClusterError(f"ctr {' '.join(args)}: {proc.stderr.strip()[-400:]}")
        return proc.stdout

    def import_image(self, archive: Path) -> None:
        """Import a docker-archive or OCI tarball into the runtime the kubelet uses."""
        self.ctr("images", "import", str(archive), timeout=300)

    def _start_kubelet(self) -> None:
        assert self.api is not None
        root = self.workdir / "kubelet"
        root.mkdir(exist_ok=True)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            # cgroup v1 machines: refused unless told otherwise (README fact 1)
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            # no KUBE-FIREWALL chain dropping non-loopback traffic to loopback addresses
            "makeIPTablesUtilChains": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": "127.0.0.1",
            "port": KUBELET_PORT,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": KUBELET_HEALTHZ_PORT,
            "podLogsDir": str(self.workdir / "pod-logs"),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.workdir / "kubelet-pki" / "ca.crt")},
            },
            "authorization": {"mode": "AlwaysAllow"},
            # ConfigMap volumes refresh within seconds, not a minute
            "syncFrequency": "10s",
            "imageGCHighThresholdPercent": 100,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%"},
            "serializeImagePulls": False,
            "registerNode": True,
        }  # fmt: skip
        path = self.workdir / "kubelet.yaml"
        path.write_text(json.dumps(config, indent=1))
        self._spawn(
            "kubelet",
            [
                str(self.bin / "kubelet"),
                f"--config={path}",
                f"--kubeconfig={self.api.kubeconfig('node')}",
                f"--hostname-override={NODE_NAME}",
                f"--root-dir={root}",
                f"--cert-dir={self.workdir / 'kubelet-serving'}",
                "--v=1",
            ],
        )

    def _start_controllers(self) -> None:
        assert self.api is not None
        pki = self.api.workdir / "pki"
        admin = str(self.api.kubeconfig("admin"))
        for name, own_flags in (
            (
                "kube-controller-manager",
                [
                    f"--root-ca-file={pki / 'ca.crt'}",
                    f"--service-account-private-key-file={pki / 'sa.key'}",
                    "--use-service-account-credentials=false",
                ],
            ),
            ("kube-scheduler", []),
        ):
            self._spawn(
                name,
                [
                    str(self.bin / name),
                    *(
                        f"--{kind}kubeconfig={admin}"
                        for kind in ("", "authentication-", "authorization-")
                    ),
                    "--bind-address=127.0.0.1",
                    f"--secure-port={free_port()}",
                    "--leader-elect=false",
                    "--profiling=false",
                    *own_flags,
                ],
            )

    # ---------------------------------------------------------------------- queries

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout=60.0):
        """kubectl as the cluster admin (a CompletedProcess; raises on failure with ``check``)."""
        assert self.api is not None
        return self.api.kubectl(*args, input=input, check=check, timeout=timeout)

    def get_json(self, *args: str) -> dict:
        """``kubectl get ARGS -o json``, decoded."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def node(self) -> dict:
        return self.get_json("node", NODE_NAME)

    def node_conditions(self) -> dict[str, dict]:
        """The node's conditions by type."""
        return {c["type"]: c for c in self.node().get("status", {}).get("conditions") or []}

    def wait_node_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_daemons()
            assert self.api is not None
            status, node = self.api.request("GET", f"/api/v1/nodes/{NODE_NAME}")
            if status == 200:
                for cond in node.get("status", {}).get("conditions") or []:
                    if cond["type"] == "Ready" and cond["status"] == "True":
                        return
            time.sleep(0.5)
        raise ClusterError(f"node not Ready after {timeout:.0f}s: {self.log_tail('kubelet')}")

    def kubelet_get(self, path: str, timeout: float = 10.0) -> str:
        """GET ``https://127.0.0.1:10250<path>`` from the kubelet itself, as the apiserver does
        (``nodes/proxy`` to a loopback address is refused by design)."""
        import ssl
        import urllib.request

        pki = self.workdir / "kubelet-pki"
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the kubelet's self-signed serving certificate
        context.load_cert_chain(
            pki / "apiserver-kubelet-client.crt", pki / "apiserver-kubelet-client.key"
        )
        url = f"https://127.0.0.1:{KUBELET_PORT}{path}"
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.read().decode()

    def _check_daemons(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited {proc.returncode}: {self.log_tail(name)}")

    # ------------------------------------------------------------------------ stop

    def _containerd_running(self) -> bool:
        proc = self._procs.get("containerd")
        return proc is not None and proc.poll() is None

    def _remove_all_containers(self) -> None:
        """Kill and delete every task and container in the k8s.io namespace (pods included)."""
        with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
            for task in self.ctr("tasks", "ls", "-q", timeout=30).split():
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, timeout=30)
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    self.ctr("tasks", "delete", "--force", task, timeout=30)
            for container in self.ctr("containers", "ls", "-q", timeout=30).split():
                with contextlib.suppress(ClusterError, subprocess.TimeoutExpired):
                    self.ctr("containers", "delete", container, timeout=30)

    def _stop_process(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, DAEMON_STOP_WAIT), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(wait)
                break

    def _kill_our_shims(self) -> None:
        """Shims of our containerd outlive it (their own session): find them by its address."""
        import psutil

        for proc in psutil.process_iter(["cmdline", "name"]):
            cmdline = proc.info.get("cmdline") or []
            if "containerd-shim" in (proc.info.get("name") or "") and any(
                arg.startswith(self.containerd_socket) for arg in cmdline
            ):
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def stop(self) -> list[str]:
        """Stop everything and undo the host changes; returns what could not be undone or is
        still different from before the start (empty when the host is as it was)."""
        problems: list[str] = []
        for name in ("kube-scheduler", "kube-controller-manager", "kubelet"):
            self._stop_process(name)
        if self._containerd_running():
            self._remove_all_containers()
        self._stop_process("containerd")
        self._kill_our_shims()
        if self.api is not None:
            self.api.stop()  # apiserver, then etcd
        hoststate.unmount_all_under(self.workdir)
        if self._host is not None:
            problems = self._host.restore()
            problems += [f"still: {change}" for change in self._host.changes()]
            self._host = None
        return problems

    def __enter__(self) -> OneNodeCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
