"""Services on a Kubernetes API server, applied with server-side apply.

The API server is the authority here: it validates, allocates nodePorts and the
healthCheckNodePort, and answers with the object as stored (or, with ``dryRun=All``, as it
would be stored). We read the allocated ports back from that answer instead of predicting them.

Connection settings are those of ``nodeport_lb.kube_client`` (as kubernetes.core takes them).
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from nodeport_lb.kube_client import KubeSettings, client_configuration
from nodeport_lb.services.base import (
    ApplyResult,
    BackendError,
    BackendUnavailable,
    InvalidService,
    owned_view,
)

# One fixed manager, so every run (whoever starts it) owns the same fields and re-applies
# never conflict with themselves.
FIELD_MANAGER = "nodeport-lb"
APPLY_PATCH = "application/apply-patch+yaml"
LIST_PAGE_SIZE = 500

# What the readers may list: kind -> (apiVersion, generated API class, method stem, namespaced).
READABLE_KINDS: dict[str, tuple[str, Any, str, bool]] = {
    "Service": ("v1", client.CoreV1Api, "service", True),
    "Pod": ("v1", client.CoreV1Api, "pod", True),
    "Node": ("v1", client.CoreV1Api, "node", False),
    "ConfigMap": ("v1", client.CoreV1Api, "config_map", True),
    "EndpointSlice": ("discovery.k8s.io/v1", client.DiscoveryV1Api, "endpoint_slice", True),
    "ReplicaSet": ("apps/v1", client.AppsV1Api, "replica_set", True),
    "Deployment": ("apps/v1", client.AppsV1Api, "deployment", True),
    "StatefulSet": ("apps/v1", client.AppsV1Api, "stateful_set", True),
}


class FieldConflict(BackendError):
    """Server-side apply refused: fields we set belong to another field manager (409)."""


# Set by the API server on a create; a dry run makes them up, so check mode does not show them.
SERVER_INVENTED_METADATA = ("uid", "creationTimestamp", "resourceVersion", "generation")


class KubernetesBackend:
    """``ServiceBackend`` on a Kubernetes API server (see ``services.base``)."""

    list_page_size = LIST_PAGE_SIZE

    def __init__(self, settings: KubeSettings) -> None:
        self.settings = settings
        self.configuration = client_configuration(settings)
        self.api_client = client.ApiClient(self.configuration)
        self.core = client.CoreV1Api(self.api_client)

    @classmethod
    def from_settings(
        cls, environ: Mapping[str, str] | None = None, **options: Any
    ) -> KubernetesBackend:
        """Connect with module-style options (``kubeconfig=``, ``context=``, ``host=``, ...)."""
        return cls(KubeSettings.resolve(options, environ))

    @property
    def host(self) -> str:
        return str(self.configuration.host)

    def close(self) -> None:
        self.api_client.close()

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._call_on(self.core.read_namespaced_service, namespace, name, missing_ok=True)

    def list(self) -> list[dict[str, Any]]:
        return self.list_objects("Service")

    # builtins.list: within the class, ``list`` is the method above
    def list_objects(
        self, kind: str, namespace: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Every object of ``kind`` (a key of ``READABLE_KINDS``), in ``namespace`` or in all
        namespaces, paged; each as ``kubectl get -o yaml`` shows it."""
        api_version, api_class, stem, namespaced = READABLE_KINDS[kind]
        api = api_class(self.api_client)
        scope: dict[str, Any]
        if not namespaced:
            method, scope = getattr(api, f"list_{stem}"), {}
        elif namespace:
            method, scope = getattr(api, f"list_namespaced_{stem}"), {"namespace": namespace}
        else:
            method, scope = getattr(api, f"list_{stem}_for_all_namespaces"), {}
        objects: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._call(method, "", limit=self.list_page_size, _continue=token, **scope)
            # List items come without apiVersion/kind; give them back so each reads as kubectl's.
            objects += [
                {"apiVersion": api_version, "kind": kind, **i} for i in page.get("items") or []
            ]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return objects

    def get_object(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """One namespaced object of ``kind``, None when it does not exist."""
        api_version, api_class, stem, _ = READABLE_KINDS[kind]
        method = getattr(api_class(self.api_client), f"read_namespaced_{stem}")
        found = self._call_on(method, namespace, name, missing_ok=True)
        return None if found is None else {"apiVersion": api_version, "kind": kind, **found}

    def apply(
        self, manifest: dict[str, Any], check_mode: bool = False, force_conflicts: bool = False
    ) -> ApplyResult:
        """Server-side apply as field manager ``nodeport-lb``.

        Without ``force_conflicts`` a field another manager (Helm, Argo CD, kubectl) owns with
        a different value makes the API server refuse the whole apply: ``FieldConflict`` with
        its message, naming the fields and their manager; nothing changes. With it, those
        fields are taken over, as ``kubectl apply --server-side --force-conflicts`` does.
        """
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        before = self.get(namespace, name)
        # dryRun=All runs admission, conflict detection, validation and allocation without
        # storing anything, so check mode reports the API server's refusal as the run would.
        after = self._call_on(
            self.core.patch_namespaced_service,
            namespace,
            name,
            body=manifest,
            field_manager=FIELD_MANAGER,
            force=force_conflicts,
            dry_run="All" if check_mode else None,
            _content_type=APPLY_PATCH,
        )
        to_be_allocated: list[str] = []
        if check_mode:
            after, to_be_allocated = _without_dry_run_inventions(manifest, before, after)
        return ApplyResult(owned_view(before) != owned_view(after), before, after, to_be_allocated)

    def delete(self, namespace: str, name: str, check_mode: bool = False) -> ApplyResult:
        before = self.get(namespace, name)
        if before is None or check_mode:
            return ApplyResult(before is not None, before, None)
        gone = self._call_on(self.core.delete_namespaced_service, namespace, name, missing_ok=True)
        # Deleted by someone else between our GET and DELETE: nothing changed by us.
        return ApplyResult(gone is not None, before, None)

    def _call_on(self, method: Callable[..., Any], namespace: str, name: str, **kwargs: Any) -> Any:
        """A call on the object ``namespace``/``name``; its errors name the object."""
        return self._call(method, name, name=name, namespace=namespace, **kwargs)

    def _call(
        self, method: Callable[..., Any], subject: str, missing_ok: bool = False, **kwargs: Any
    ) -> Any:
        """One API call, answered as the JSON the server sent; errors made into ours."""
        try:
            response = method(
                **kwargs, _preload_content=False, _request_timeout=self.settings.timeout
            )
        except ApiException as exc:
            if exc.status == 404 and missing_ok:
                return None
            raise self._api_error(exc, subject) from None
        except urllib3.exceptions.HTTPError as exc:
            raise BackendUnavailable(
                f"cannot reach the Kubernetes API server at {self.host}: {_connection_reason(exc)}"
            ) from None
        try:
            return _kubectl_view(json.loads(response.data))
        except ValueError:
            raise BackendError(
                f"Kubernetes API server at {self.host} answered something that is not JSON "
                "(a proxy in the way?)"
            ) from None

    def _api_error(self, exc: ApiException, name: str) -> BackendError | InvalidService:
        status = _status_body(exc)
        message = status.get("message") or exc.reason or "no message"
        if exc.status == 409 and any(
            (c or {}).get("reason") == "FieldManagerConflict"
            for c in (status.get("details") or {}).get("causes") or []
        ):
            # The API server's own words name every field and its manager.
            return FieldConflict(
                f"{message}\n(the Service is unchanged; set force_conflicts: true to take these "
                f"fields over from their manager)"
            )
        if exc.status in (400, 422):
            causes = (status.get("details") or {}).get("causes") or []
            errors = [
                f"{c['field']}: {c.get('message', '')}" if c.get("field") else c.get("message", "")
                for c in causes
                if isinstance(c, Mapping)
            ]
            # The summary repeats 'Service "x" is invalid: '; InvalidService adds its own.
            return InvalidService(
                errors or [re.sub(r'^\w+ "[^"]*" is invalid: ', "", message)], name
            )
        return BackendError(
            f"Kubernetes API server at {self.host}: {exc.status} "
            f"{status.get('reason') or exc.reason}: {_one_line(message)}"
        )


def _without_dry_run_inventions(
    desired: dict[str, Any], before: dict[str, Any] | None, after: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """A dry-run answer with only what the real run will also produce.

    The API server picks free node ports (and cluster IPs) at random, in a dry run as in the
    real one, so a value it picked in the dry run is not the one the run will get: such values
    are taken out and their paths returned. A port the Service already holds, or asked for,
    stays. Identity fields a dry-run create makes up (uid, creationTimestamp, ...) go too.
    """
    after = json.loads(json.dumps(after))
    meta = after.get("metadata") or {}
    spec = after.get("spec") or {}
    before_spec = (before or {}).get("spec") or {}
    desired_spec = desired.get("spec") or {}
    if before is None:
        for key in SERVER_INVENTED_METADATA:
            meta.pop(key, None)
        if not desired_spec.get("clusterIP"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
    pending: list[str] = []

    def port_key(port: Mapping[str, Any]) -> tuple[Any, Any]:
        return port.get("port"), port.get("protocol") or "TCP"

    held = {port_key(p): p.get("nodePort") for p in before_spec.get("ports") or []}
    asked = {port_key(p): p.get("nodePort") for p in desired_spec.get("ports") or []}
    for i, port in enumerate(spec.get("ports") or []):
        node_port = port.get("nodePort")
        if node_port and node_port not in (held.get(port_key(port)), asked.get(port_key(port))):
            del port["nodePort"]
            pending.append(f"spec.ports[{i}].nodePort")
    hcnp = spec.get("healthCheckNodePort")
    if hcnp and hcnp not in (
        before_spec.get("healthCheckNodePort"),
        desired_spec.get("healthCheckNodePort"),
    ):
        del spec["healthCheckNodePort"]
        pending.append("spec.healthCheckNodePort")
    return after, pending


def _status_body(exc: ApiException) -> dict[str, Any]:
    """The metav1.Status the API server sends with an error, or {} when it sent none."""
    try:
        body = json.loads(exc.body or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


def _kubectl_view(obj: Any) -> Any:
    """Drop managedFields, as ``kubectl get -o yaml`` does: bookkeeping, not the object."""
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)
    return obj


def _connection_reason(exc: urllib3.exceptions.HTTPError) -> str:
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    # urllib3 prefixes the connection object's repr; the user needs only what went wrong.
    text = re.sub(r"^(<[^>]*>|\w*Connection\w*\([^)]*\)): ", "", str(reason))
    return _one_line(text)


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
