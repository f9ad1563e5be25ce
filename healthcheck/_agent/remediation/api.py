"""The API calls remediation makes, beyond the agent's own, through the official client.

Patch the Node (merge patch, with a resourceVersion precondition), list the pods bound to it,
create pods/eviction, count nodes (for a percentage budget), and get/list/create/update Leases
in one namespace: exactly the rights of ``packaging/kubernetes/remediation/rbac.yaml``.
Bodies are read raw and bounded, as :mod:`healthcheck._agent.kube` does, and a refusal keeps the
server's ``Status`` causes (a PDB refusal names its budget there).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from healthcheck._agent.kube import ApiError, KubeApi, quote
from healthcheck.sdk.text import one_line

MERGE_PATCH = "application/merge-patch+json"
POD_PAGE = 100
MAX_POD_PAGES = 50  # 5000 pods: far beyond any node's limit
LEASES = "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases"


class RemediationError(ApiError):
    """An :class:`ApiError` that also carries the ``Status`` body's ``details.causes`` messages."""

    def __init__(
        self,
        message: str,
        status: int = 0,
        retry_after: float | None = None,
        causes: Iterable[str] = (),
    ) -> None:
        super().__init__(message, status, retry_after)
        self.causes: list[str] = list(causes)


def _causes(data: bytes) -> list[str]:
    """The ``details.causes`` messages of a ``Status`` body (at most 10, one line each)."""
    try:
        status = json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return []
    details = status.get("details") if isinstance(status, dict) else None
    causes = details.get("causes") if isinstance(details, dict) else None
    found = []
    for cause in causes if isinstance(causes, list) else ():
        if isinstance(cause, dict) and cause.get("message"):
            found.append(one_line(str(cause["message"]), 200))
    return found[:10]


def json_object(value: object) -> dict[str, Any]:
    """A field of the server's JSON that should be an object; ``{}`` when absent or not one."""
    return value if isinstance(value, dict) else {}


class RemediationApi(KubeApi):
    """:class:`KubeApi` plus remediation's calls; every call counts in :attr:`requests`."""

    def __init__(self, configuration: Any, timeout: float = 10.0) -> None:
        super().__init__(configuration, timeout)
        self.requests = 0

    def get_node(self, name: str) -> dict[str, Any]:
        self.requests += 1
        return super().get_node(name)

    def _request(
        self,
        what: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        self.requests += 1
        return self._call(what, method, path, body, content_type)

    def _refusal(self, what: str, response: Any, data: bytes) -> RemediationError:
        """As the agent's, keeping the ``Status`` causes (a PDB refusal names its budget there)."""
        error = super()._refusal(what, response, data)
        return RemediationError(str(error), error.status, error.retry_after, _causes(data))

    # ------------------------------------------------------------------------------ nodes

    def patch_node(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the Node (``metadata.resourceVersion`` in it makes it
        conditional: 409 when the node changed since it was read)."""
        path = f"/api/v1/nodes/{quote(name)}"
        return self._request(f"PATCH node {name}", "PATCH", path, body, MERGE_PATCH)

    def count_nodes(self) -> int:
        """The number of Nodes, from one item and ``remainingItemCount`` (one small request)."""
        data = self._request("list nodes", "GET", "/api/v1/nodes?limit=1")
        items = data.get("items")
        meta = json_object(data.get("metadata"))
        remaining = meta.get("remainingItemCount")
        extra = remaining if isinstance(remaining, int) and remaining > 0 else 0
        return (len(items) if isinstance(items, list) else 0) + extra

    # ------------------------------------------------------------------------------- pods

    def list_pods(self, node: str) -> tuple[list[dict[str, Any]], bool]:
        """The pods bound to ``node`` (all namespaces), in pages, so each reply stays small;
        and whether that is all of them (``False`` past :data:`MAX_POD_PAGES` pages: the
        caller must not take the pods it was not shown for gone)."""
        pods: list[dict[str, Any]] = []
        token = ""
        for _ in range(MAX_POD_PAGES):
            params = {"fieldSelector": f"spec.nodeName={node}", "limit": str(POD_PAGE)}
            if token:
                params["continue"] = token
            data = self._request(f"list pods on {node}", "GET", f"/api/v1/pods?{urlencode(params)}")
            items = data.get("items")
            pods += [p for p in items if isinstance(p, dict)] if isinstance(items, list) else []
            meta = json_object(data.get("metadata"))
            more = meta.get("continue")
            token = more if isinstance(more, str) else ""
            if not token:
                break
        return pods, not token

    def evict(self, namespace: str, name: str, grace_seconds: int | None) -> dict[str, Any]:
        """POST a policy/v1 Eviction; 429 when a PodDisruptionBudget refuses it."""
        body: dict[str, Any] = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace},
        }
        if grace_seconds is not None:
            body["deleteOptions"] = {"gracePeriodSeconds": grace_seconds}
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/eviction"
        return self._request(f"evict {namespace}/{name}", "POST", path, body, "application/json")

    # ----------------------------------------------------------------------------- leases

    def list_leases(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        query = urlencode({"labelSelector": selector})
        path = f"{LEASES.format(ns=quote(namespace))}?{query}"
        data = self._request(f"list leases in {namespace}", "GET", path)
        items = data.get("items")
        return (
            [lease for lease in items if isinstance(lease, dict)] if isinstance(items, list) else []
        )

    def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        path = LEASES.format(ns=quote(namespace))
        return self._request(f"create lease in {namespace}", "POST", path, body, "application/json")

    def update_lease(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole Lease; its ``metadata.resourceVersion`` makes it a compare-and-swap."""
        path = f"{LEASES.format(ns=quote(namespace))}/{quote(name)}"
        return self._request(f"update lease {name}", "PUT", path, body, "application/json")
