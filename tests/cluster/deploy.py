"""``packaging/kubernetes/`` applied to a test cluster: the shipped files plus a test overlay.

The overlay is a kustomization (``kubectl apply -k``) holding byte-identical copies of the shipped
manifests and one strategic-merge patch with only what this sandbox lacks:

- ``imagePullPolicy: Never`` (no registry; the image was imported into containerd);
- ``KUBERNETES_SERVICE_HOST=127.0.0.1`` and ``KUBERNETES_SERVICE_PORT`` (no kube-proxy, so the
  ``kubernetes`` Service IP leads nowhere; a hostNetwork pod reaches the apiserver on loopback);
- the ``containerd`` hostPath pointing at the test containerd's private socket folder.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
SHIPPED = REPO / "packaging" / "kubernetes"
MANIFESTS = ("rbac.yaml", "configmap.yaml", "daemonset.yaml")
NAMESPACE = "kube-system"
DAEMONSET = "node-healthcheck"
SELECTOR = "app.kubernetes.io/name=node-healthcheck"
CONTAINER = "agent"


def overlay_patch(*, api_port: int, containerd_dir: str, resources: dict | None = None) -> dict:
    """The one patch the test overlay makes to the shipped DaemonSet (``resources`` only for a
    bench that measures the agent without the shipped limits)."""
    container: dict = {
        "name": CONTAINER,
        "imagePullPolicy": "Never",
        "env": [
            {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(api_port)},
        ],
    }
    if resources is not None:
        container["resources"] = resources
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET, "namespace": NAMESPACE},
        "spec": {
            "template": {
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "containerd", "hostPath": {"path": containerd_dir}}],
                }
            }
        },
    }


def write_overlay(
    directory: Path, *, api_port: int, containerd_dir: str, resources: dict | None = None
) -> Path:
    """The kustomization folder: shipped manifests copied unchanged, and the patch."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in MANIFESTS:
        shutil.copyfile(SHIPPED / name, directory / name)
    patch = overlay_patch(api_port=api_port, containerd_dir=containerd_dir, resources=resources)
    (directory / "test-overlay.json").write_text(json.dumps(patch, indent=1))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(MANIFESTS),
        "patches": [{"path": "test-overlay.json"}],
    }
    (directory / "kustomization.yaml").write_text(json.dumps(kustomization, indent=1))
    return directory


def agent_pods(cluster) -> list[dict]:
    """The DaemonSet's pods that are not being deleted."""
    pods = cluster.get_json("pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """Poll ``predicate()`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {str(last)[:300]})")


def wait_ready_pod(cluster, timeout: float, *, not_uid: str | None = None) -> dict:
    """The one Ready agent pod (other than the pod with UID ``not_uid``)."""

    def ready():
        pods = [p for p in agent_pods(cluster) if p["metadata"]["uid"] != not_uid]
        return next((p for p in pods if is_ready(p)), None)

    return wait_for(ready, timeout, "a Ready node-healthcheck pod")


def agent_conditions(cluster, types) -> dict[str, dict]:
    """The node's conditions of the given types (those present)."""
    return {t: c for t, c in cluster.node_conditions().items() if t in types}


def configmap_agent_yaml(path: Path = SHIPPED / "configmap.yaml") -> str:
    """The agent configuration the shipped ConfigMap holds."""
    import yaml

    return yaml.safe_load(path.read_text())["data"]["agent.yaml"]


def condition_types(agent_yaml: str) -> set[str]:
    """The node condition types a configuration's permanent checks own."""
    import yaml

    from healthcheck import _host as host
    from healthcheck._agent.config import parse_config

    catalog = {name: loaded.checker for name, loaded in host.discover().checkers.items()}
    config = parse_config(yaml.safe_load(agent_yaml), catalog)
    return {spec.condition for spec in config.checks if spec.permanent and spec.condition}


def apply(cluster, overlay: Path) -> float:
    """``kubectl apply -k overlay``; returns the monotonic time just before it ran."""
    started = time.monotonic()
    cluster.kubectl("apply", "-k", str(overlay))
    return started


def deploy(cluster, workdir: Path, resources: dict | None = None) -> tuple[float, Path]:
    """Write the overlay for ``cluster`` and apply it: (monotonic start, overlay folder)."""
    overlay = write_overlay(
        workdir / "overlay",
        api_port=cluster.api.port,
        containerd_dir=str(Path(cluster.containerd_socket).parent),
        resources=resources,
    )
    return apply(cluster, overlay), overlay
