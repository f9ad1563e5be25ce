"""A real kube-apiserver (with etcd) on loopback for tests and bench scripts, envtest-style.

Follows controller-runtime's envtest convention: the binaries (``kube-apiserver``, ``etcd``,
``kubectl``) are found in ``$KUBEBUILDER_ASSETS``, else in ``../shared/envtest`` (unpacked by
``tests/shared_assets.py``), else on ``PATH``. No pytest in here: bench scripts import it too
(``sys.path.insert(0, "tests")``; ``from envtest import start_envtest``).

API (stable; other tests and benches build on it)::

    with start_envtest(workdir) as env:          # Envtest, started; stopped on exit, always
        env.url                                   # "https://127.0.0.1:PORT"
        env.ca_file                               # the CA that signed the serving certificate
        env.identities["agent"]                   # Identity(key, user, groups, token)
        env.kubeconfig("agent")                   # path of a kubeconfig for that identity
        env.kubectl("get", "nodes", identity="admin", input=None, check=True)
                                                  # CompletedProcess (text), raises EnvtestError
        env.request("GET", "/api/v1/nodes/n1", identity="admin", body=None,
                    content_type="application/json")      # (HTTP status, decoded JSON dict)
        env.create_node("n1", conditions=None)    # a Node object (no kubelet runs here)
        env.delete_node("n1")
        env.node_conditions("n1")                 # {type: condition dict}
        env.stop_apiserver(); env.start_apiserver()   # outage on the same port; etcd keeps data
        env.apiserver_running                     # bool
        env.audit(user="...", since=unix_time)    # the API requests it served (audit log,
                                                  # metadata level, one entry per request)

Identities (static bearer tokens, ``--token-auth-file``):

- ``admin``: user ``envtest-admin`` in ``system:masters``;
- ``agent``: ``system:serviceaccount:kube-system:node-healthcheck`` in ``system:serviceaccounts``
  and ``system:serviceaccounts:kube-system`` (the ServiceAccount packaging/kubernetes/rbac.yaml
  binds; it has no rights until that file is applied);
- ``node``: ``system:node:<node_name>`` in ``system:nodes`` (the kubelet-kubeconfig path; the
  Node authorizer and the NodeRestriction admission plugin apply);
- ``nobody``: user ``envtest-nobody`` with no rights at all.

The server runs ``--authorization-mode=Node,RBAC``, ``--anonymous-auth=false`` and the
NodeRestriction admission plugin, with its own CA and serving certificate (openssl, EC P-256)
and a service-account signing key, all in ``workdir``. There is no kubelet, scheduler or
controller manager: Nodes and Events are plain API objects. Every request except health
probes is written to ``workdir/audit.log`` (metadata level, at ResponseComplete), which is how
tests and benches count what a client sent.

Teardown is guaranteed: both daemons run in their own process groups, which ``stop()`` kills
(SIGTERM, then SIGKILL); ``stop()`` also runs at interpreter exit, and each daemon gets
``PR_SET_PDEATHSIG`` (SIGKILL) so that it dies with the thread that started it even when the
test process is killed. Start it from the main thread (pytest fixtures and scripts do).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

AGENT_NAMESPACE = "kube-system"
AGENT_SERVICE_ACCOUNT = "node-healthcheck"
READY_TIMEOUT = 60.0
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/readyz*", "/livez*", "/healthz*"]},
        {"level": "Metadata"},
    ],
}
_PR_SET_PDEATHSIG = 1


class EnvtestError(Exception):
    """The server could not be started, or a kubectl/API call failed; the message says why."""


@dataclass(frozen=True)
class Identity:
    """One static-token identity of the test server."""

    key: str
    user: str
    groups: tuple[str, ...]
    token: str


def find_binaries(assets: Path | str | None = None) -> Path:
    """The folder holding kube-apiserver, etcd and kubectl; :class:`EnvtestError` if none.

    ``assets``, else ``$KUBEBUILDER_ASSETS``, else ``../shared/envtest`` (unpacked), else a
    folder made of links to the binaries found on ``PATH``.
    """
    if assets is not None:
        folder = Path(assets)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from shared_assets import AssetsMissing, shared_present
        from shared_assets import assets as shared

        try:
            return shared("envtest")
        except AssetsMissing as exc:
            if os.environ.get("KUBEBUILDER_ASSETS") or shared_present("envtest"):
                raise EnvtestError(str(exc)) from None
            found = {n: shutil.which(n) for n in ("kube-apiserver", "etcd", "kubectl")}
            if not all(found.values()):
                raise EnvtestError(str(exc)) from None
            folder = Path(os.path.dirname(found["kube-apiserver"]))  # type: ignore[arg-type]
            if all(Path(p).parent == folder for p in found.values()):  # type: ignore[arg-type]
                return folder
            raise EnvtestError(
                "kube-apiserver, etcd and kubectl are on PATH in different folders: "
                "set KUBEBUILDER_ASSETS to one folder holding all three"
            ) from None
    missing = [n for n in ("kube-apiserver", "etcd", "kubectl") if not (folder / n).exists()]
    if missing:
        raise EnvtestError(f"{folder} lacks {', '.join(missing)}")
    return folder


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def spawn_daemon(argv: list[str], log: Path) -> subprocess.Popen:
    """Start a daemon in its own process group, output appended to ``log``, in ``log``'s folder;
    it gets SIGKILL when the thread that started it ends (a killed test run takes it along)."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            cwd=log.parent,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl between fork and exec
        )


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        raise EnvtestError(f"openssl {args[0]} failed: {proc.stderr.strip()[-300:]}")


def make_pki(directory: Path) -> dict[str, Path]:
    """CA, serving certificate (SAN 127.0.0.1, localhost) and service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
        "-subj", "/CN=envtest-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=kube-apiserver", cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "basicConstraints=critical,CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", "sa.key", cwd=directory,
    )  # fmt: skip
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    names = ("ca.crt", "ca.key", "server.crt", "server.key", "sa.key", "sa.pub")
    return {name: directory / name for name in names}


class Envtest:
    """etcd + kube-apiserver on loopback; see the module docstring for the API."""

    def __init__(
        self,
        workdir: Path | str,
        *,
        assets: Path | str | None = None,
        node_name: str = "node-1",
        extra_flags: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.bin = find_binaries(assets)
        self.node_name = node_name
        self.extra_flags = tuple(extra_flags)
        self.identities: dict[str, Identity] = {
            "admin": Identity("admin", "envtest-admin", ("system:masters",), ""),
            "agent": Identity(
                "agent",
                f"system:serviceaccount:{AGENT_NAMESPACE}:{AGENT_SERVICE_ACCOUNT}",
                ("system:serviceaccounts", f"system:serviceaccounts:{AGENT_NAMESPACE}"),
                "",
            ),
            "node": Identity("node", f"system:node:{node_name}", ("system:nodes",), ""),
            "nobody": Identity("nobody", "envtest-nobody", (), ""),
        }
        self.identities = {
            key: Identity(i.key, i.user, i.groups, secrets.token_hex(16))
            for key, i in self.identities.items()
        }
        self.etcd_port = 0
        self.port = 0
        self._etcd: subprocess.Popen | None = None
        self._apiserver: subprocess.Popen | None = None
        self._ssl: ssl.SSLContext | None = None
        self._kubeconfigs: dict[str, Path] = {}
        self._registered = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    @property
    def apiserver_running(self) -> bool:
        return self._apiserver is not None and self._apiserver.poll() is None

    def start(self) -> Envtest:
        """Start etcd and the apiserver and wait until ``/readyz`` answers ok."""
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        try:
            self.pki = make_pki(self.workdir / "pki")
            self._write_tokens()
            self._start_etcd()
            self.port = free_port()
            self.start_apiserver()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_tokens(self) -> None:
        lines = []
        for ident in self.identities.values():
            groups = ",".join(ident.groups)
            lines.append(f'{ident.token},{ident.user},{ident.user},"{groups}"')
        path = self.workdir / "tokens.csv"
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)

    def _spawn(self, argv: list[str], log_name: str) -> subprocess.Popen:
        return spawn_daemon(argv, self.workdir / log_name)

    def _log_tail(self, name: str) -> str:
        try:
            text = (self.workdir / name).read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(text.strip().splitlines()[-5:])[-600:]

    def _start_etcd(self) -> None:
        for _attempt in range(3):
            self.etcd_port, peer = free_port(), free_port()
            client = f"http://127.0.0.1:{self.etcd_port}"
            self._etcd = self._spawn(
                [
                    str(self.bin / "etcd"),
                    "--data-dir",
                    str(self.workdir / "etcd-data"),
                    "--listen-client-urls",
                    client,
                    "--advertise-client-urls",
                    client,
                    "--listen-peer-urls",
                    f"http://127.0.0.1:{peer}",
                    "--unsafe-no-fsync",
                    "--log-level",
                    "warn",
                ],
                "etcd.log",
            )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and self._etcd.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.etcd_port), 0.5):
                        return
                except OSError:
                    time.sleep(0.05)
            self._kill(self._etcd)
        raise EnvtestError(f"etcd did not start: {self._log_tail('etcd.log')}")

    def start_apiserver(self) -> None:
        """Start (or restart, on the same port) the apiserver; returns once it is ready."""
        if self.apiserver_running:
            return
        pki = self.workdir / "pki"
        argv = [
            str(self.bin / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            f"--secure-port={self.port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'server.crt'}",
            f"--tls-private-key-file={pki / 'server.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={self.workdir / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--anonymous-auth=false",
            "--enable-admission-plugins=NodeRestriction",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            "--api-audiences=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            f"--audit-policy-file={self._audit_policy()}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-mode=blocking",
            *self.extra_flags,
        ]
        self._apiserver = self._spawn(argv, "kube-apiserver.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._apiserver.poll() is not None:
                break
            with contextlib.suppress(OSError, EnvtestError):
                status, _ = self._raw("GET", "/readyz", self.identities["admin"], None, "", 2.0)
                if status == 200:
                    return
            time.sleep(0.2)
        tail = self._log_tail("kube-apiserver.log")
        self._kill(self._apiserver)
        self._apiserver = None
        raise EnvtestError(f"kube-apiserver did not become ready: {tail}")

    @property
    def audit_log(self) -> Path:
        return self.workdir / "audit.log"

    def _audit_policy(self) -> Path:
        path = self.workdir / "audit-policy.json"
        path.write_text(json.dumps(AUDIT_POLICY))
        return path

    def audit(self, *, user: str | None = None, since: float = 0.0) -> list[dict]:
        """Audit events (dicts as the apiserver logs them) received at or after ``since``
        (Unix time), of ``user`` (a user name or an identity key) when given."""
        from datetime import datetime

        if user in self.identities:
            user = self.identities[user].user
        found = []
        try:
            lines = self.audit_log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line being written right now
            if user is not None and event.get("user", {}).get("username") != user:
                continue
            stamp = event.get("requestReceivedTimestamp", "")
            try:
                at = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
            if at >= since:
                event["_at"] = at
                found.append(event)
        return found

    def stop_apiserver(self) -> None:
        """Kill the apiserver (an outage: connection refused on its port); etcd keeps running."""
        self._kill(self._apiserver)
        self._apiserver = None

    @staticmethod
    def _kill(proc: subprocess.Popen | None) -> None:
        if proc is None or proc.returncode is not None:
            if proc is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # stragglers in its group
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop(self) -> None:
        """Kill both daemons and their process groups; safe to call more than once."""
        self._kill(self._apiserver)
        self._apiserver = None
        self._kill(self._etcd)
        self._etcd = None

    def __enter__(self) -> Envtest:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # --------------------------------------------------------------------- clients

    def kubeconfig(self, identity: str = "admin") -> Path:
        """A kubeconfig file (YAML-compatible JSON) for ``identity``, written once."""
        if identity in self._kubeconfigs:
            return self._kubeconfigs[identity]
        ident = self.identities[identity]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "envtest",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": ident.key, "user": {"token": ident.token}}],
            "contexts": [{"name": ident.key, "context": {"cluster": "envtest", "user": ident.key}}],
            "current-context": ident.key,
        }
        path = self.workdir / f"kubeconfig-{ident.key}"
        path.write_text(json.dumps(config, indent=1))
        path.chmod(0o600)
        self._kubeconfigs[identity] = path
        return path

    def kubectl(
        self,
        *args: str,
        identity: str = "admin",
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess:
        """Run the envtest kubectl as ``identity``; with ``check``, a failure raises."""
        argv = [str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig(identity)), *args]
        proc = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check and proc.returncode != 0:
            raise EnvtestError(
                f"kubectl {' '.join(args)} ({identity}) exited {proc.returncode}: "
                f"{proc.stderr.strip()[-500:]}"
            )
        return proc

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=str(self.ca_file))
        return self._ssl

    def _raw(self, method, path, ident, body, content_type, timeout) -> tuple[int, dict]:
        import http.client

        conn = http.client.HTTPSConnection(
            "127.0.0.1", self.port, timeout=timeout, context=self._context()
        )
        headers = {"Authorization": f"Bearer {ident.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"raw": raw.decode(errors="replace")}
        return response.status, decoded if isinstance(decoded, dict) else {"items": decoded}

    def request(
        self,
        method: str,
        path: str,
        *,
        identity: str = "admin",
        body=None,
        content_type: str = "application/json",
        timeout: float = 10.0,
    ) -> tuple[int, dict]:
        """One HTTPS call as ``identity``: (status, decoded JSON body)."""
        return self._raw(method, path, self.identities[identity], body, content_type, timeout)

    # ------------------------------------------------------------------ node helpers

    def create_node(self, name: str, conditions: list[dict] | None = None) -> dict:
        """Create a Node object (and set its status conditions when given)."""
        status, node = self.request(
            "POST",
            "/api/v1/nodes",
            body={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}},
        )
        if status != 201:
            raise EnvtestError(f"create node {name}: HTTP {status}: {node.get('message')}")
        if conditions:
            status, node = self.request(
                "PATCH",
                f"/api/v1/nodes/{name}/status",
                body={"status": {"conditions": conditions}},
                content_type="application/strategic-merge-patch+json",
            )
            if status != 200:
                raise EnvtestError(f"set node {name} status: HTTP {status}: {node.get('message')}")
        return node

    def delete_node(self, name: str) -> None:
        status, body = self.request("DELETE", f"/api/v1/nodes/{name}")
        if status not in (200, 404):
            raise EnvtestError(f"delete node {name}: HTTP {status}: {body.get('message')}")

    def node_conditions(self, name: str) -> dict[str, dict]:
        """The node's conditions by type (``{}`` when it has none; raises when it is absent)."""
        status, node = self.request("GET", f"/api/v1/nodes/{name}")
        if status != 200:
            raise EnvtestError(f"get node {name}: HTTP {status}: {node.get('message')}")
        return {c["type"]: c for c in (node.get("status") or {}).get("conditions") or []}


@contextlib.contextmanager
def start_envtest(workdir: Path | str, **kwargs) -> Iterator[Envtest]:
    """``with start_envtest(dir) as env:`` a started :class:`Envtest`, stopped on exit."""
    env = Envtest(workdir, **kwargs)
    try:
        env.start()
        yield env
    finally:
        env.stop()


if __name__ == "__main__":
    # Manual use: start one, print how to reach it, run until Ctrl-C.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, start_envtest(tmp) as env:
        print(f"{env.url}  admin kubeconfig: {env.kubeconfig('admin')}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
