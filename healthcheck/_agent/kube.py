"""The API calls the agent makes, through the official ``kubernetes`` client, and nothing more.

GET the node, strategic-merge PATCH its status, POST and PATCH events: exactly the rights of
NPD's ``system:node-problem-detector`` role. Responses are read raw (bounded) instead of being
turned into client models, which costs CPU the agent does not need to spend. Retries belong to
the reporter (backoff with jitter), so the client's own urllib3 retries are switched off.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote as url_quote

from healthcheck.sdk.text import one_line

if TYPE_CHECKING:  # the client package costs ~20 MiB: only who sends loads it (see KubeApi)
    from kubernetes.client import Configuration

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
MAX_RESPONSE_BYTES = 4 << 20
USER_AGENT = "node-healthcheck-agent"


class ApiError(Exception):
    """A failed call: ``status`` is the HTTP code (0 when the server was not reached)."""

    def __init__(self, message: str, status: int = 0, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


MAX_RETRY_AFTER = 86400  # seconds: a Retry-After beyond a day is not advice to honour


class Api(Protocol):
    """The agent's four calls, as :class:`KubeApi` makes them (a rate limit or a dry run may
    stand in). Each returns the server's JSON object or raises :class:`ApiError`."""

    def get_node(self, name: str) -> dict[str, Any]: ...

    def patch_node_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]: ...


def retry_after_seconds(value: object) -> float | None:
    """A ``Retry-After`` header's delay in seconds, or ``None`` when absent or unusable.

    Only delay-seconds (1 to 6 ASCII digits, at most a day): ``float()`` would also take "٣",
    "1_0", "nan" and "inf". The RFC's other form, an HTTP-date, is ignored: the API server
    only ever sends seconds, and a date would trust the two clocks to agree.
    """
    if not isinstance(value, str):
        return None
    value = value.strip(" \t")
    if not 0 < len(value) <= 6 or not value.isascii() or not value.isdigit():
        return None
    seconds = int(value)
    return float(seconds) if seconds <= MAX_RETRY_AFTER else None


def _retry_after(headers: Any) -> float | None:
    return retry_after_seconds(headers.get("Retry-After") if headers is not None else None)


def load_client_config(kubeconfig: str | None) -> Configuration:
    """A client Configuration: ``kubeconfig`` when given, else the in-cluster service account.

    Raises ``ValueError`` with one line when neither can be loaded.
    """
    # Loaded only by who talks to a server (see KubeApi): not on the dry run or a check's path.
    from kubernetes import config
    from kubernetes.client import Configuration

    configuration = Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        else:
            config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration
            )
    except config.ConfigException as exc:
        where = f"kubeconfig {kubeconfig}" if kubeconfig else "in-cluster config"
        hint = "" if kubeconfig else " (outside a pod, pass --kubeconfig)"
        raise ValueError(
            f"cannot load {one_line(where, 300)}: {one_line(exc, 500)}{hint}"
        ) from None
    except (OSError, TypeError, KeyError, AttributeError) as exc:
        shown = one_line(kubeconfig, 300)
        raise ValueError(f"cannot load kubeconfig {shown}: {one_line(exc, 500)}") from None
    configuration.retries = False  # one attempt per call; the reporter decides when to retry
    return configuration


class KubeApi:
    """The four calls, each with a connect/read timeout; raises :class:`ApiError`.

    Requests go through the official client's ``ApiClient`` (configuration, auth, TLS,
    proxies) but not through the generated ``CoreV1Api``: importing that one module costs
    21 MiB of RSS here (measured: 43 -> 64 MiB peak), a third of the agent's budget, for
    wrappers around four fixed paths.
    """

    def __init__(self, configuration: Configuration, timeout: float = 10.0) -> None:
        from kubernetes.client.api_client import ApiClient  # imported only by who sends

        self._api = ApiClient(configuration)
        self._api.user_agent = USER_AGENT
        self._timeout = (min(5.0, timeout), timeout)

    def _call(
        self,
        what: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        import urllib3  # loaded with the client above; named here for its exception types
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            request = self._api.param_serialize(
                method, path, header_params=headers, body=body, auth_settings=["BearerToken"]
            )
            response = self._api.call_api(*request, _request_timeout=self._timeout)
            raw = response.response
            try:
                data = raw.read(MAX_RESPONSE_BYTES + 1, decode_content=True)
            finally:
                raw.release_conn()
        except ApiException as exc:
            raise ApiError(f"{what}: {squeezed(exc.reason)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            detail = squeezed(exc)
            raise ApiError(f"{what}: API server unreachable: {detail}") from None
        if not 200 <= response.status <= 299:
            raise self._refusal(what, response, data[:MAX_RESPONSE_BYTES])
        if len(data) > MAX_RESPONSE_BYTES:
            raise ApiError(f"{what}: response larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            decoded = json.loads(data) if data else {}
        except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the stack
            raise ApiError(f"{what}: response is not JSON") from None
        return decoded if isinstance(decoded, dict) else {}

    def _refusal(self, what: str, response: Any, data: bytes) -> ApiError:
        """The error for a non-2xx reply (``data``: its bounded body); a subclass may keep
        more of the server's ``Status``."""
        reason = _status_message(data) or response.reason or "error"
        return ApiError(
            f"{what}: HTTP {response.status}: {reason}",
            response.status,
            _retry_after(response.headers),
        )

    def get_node(self, name: str) -> dict[str, Any]:
        return self._call(f"GET node {name}", "GET", f"/api/v1/nodes/{quote(name)}")

    def patch_node_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/nodes/{quote(name)}/status"
        return self._call(f"PATCH node {name} status", "PATCH", path, body, STRATEGIC_MERGE)

    def create_event(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/namespaces/{quote(namespace)}/events"
        return self._call("POST event", "POST", path, body, "application/json")

    def patch_event(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/v1/namespaces/{quote(namespace)}/events/{quote(name)}"
        return self._call(f"PATCH event {name}", "PATCH", path, patch, STRATEGIC_MERGE)


def quote(segment: str) -> str:
    """One path segment, percent-encoded (a node name never contains '/', but be sure)."""
    return url_quote(segment, safe="")


def squeezed(text: object, limit: int = 200) -> str:
    """``text`` on one line with runs of blanks squeezed, at most ``limit`` bytes; only the
    first few KiB of a huge message are looked at."""
    return " ".join(one_line(text, 2 * limit).split())[:limit]


def _status_message(body: bytes) -> str:
    if not body:
        return ""
    try:
        status = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return squeezed(message) if isinstance(message, str) else ""
