"""A stand-in for the Kubernetes API server, for the calls KubernetesBackend makes.

No API server can run on these machines, so the backend is tested against a real HTTP server
on 127.0.0.1: kmock's ``KubernetesScaffold`` (Kubernetes URL parsing, Status error bodies) with
reactions that play the API server's part for Services. kmock's ``KubernetesEmulator`` cannot
be used as is: it merges a PATCH into an existing object and answers 404 for a new one, where
server-side apply creates, and it would store a ``dryRun`` request. So the reactions below keep
the Services themselves and do what the real API server does for these calls:

- PATCH with ``application/apply-patch+yaml``: needs ``fieldManager``; allocates nodePorts and
  the healthCheckNodePort from one pool (explicit ports honoured, held ports kept on re-apply,
  a taken port refused with a 422 ``Invalid`` Status carrying ``details.causes``); fills in the
  server-owned fields (uid, resourceVersion, clusterIP, managedFields); ``dryRun=All`` answers
  the same object and stores nothing.
- Field ownership as server-side apply keeps it, per manager and per leaf field (ports keyed
  by port and protocol, the selector and lists atomic, labels and annotations per key): an
  apply that sets a field another manager owns to a different value is refused with the API
  server's 409 ``Conflict`` Status (its message, one ``FieldManagerConflict`` cause per field)
  unless ``force=true``, which takes the field over. A PATCH with
  ``application/merge-patch+json`` is an ``Update`` by its ``fieldManager`` (how Helm writes),
  merged into the stored object. Simplification: an apply replaces the stored object rather
  than merging with what other managers set.
- GET one (404 ``NotFound`` Status when absent) / GET a list (all namespaces or one).
- DELETE (answers the deleted object, 404 when absent).
- GET one / GET a list (paged) of EndpointSlices, Pods, Nodes, ConfigMaps, ReplicaSets,
  Deployments and StatefulSets put there with ``add`` (read-only: what doctor reads).

Allocation reuses nodeport_lb.allocation, which mirrors the API server's allocator: the tests
here are about the backend's HTTP conversation and how it reads the answers, not about
allocation (tested on its own). Nothing in the kubernetes client or in nodeport-lb is patched.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import ipaddress
import itertools
import ssl
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
from aiohttp.test_utils import RawTestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from nodeport_lb.allocation import allocate, ports_held_by_others
from nodeport_lb.model import NodePortRange

SERVICES = kmock.resource("", "v1", "services")
# The other kinds the readers list (doctor): served read-only from ``FakeApiServer.objects``.
READ_ONLY = {
    "EndpointSlice": kmock.resource("discovery.k8s.io", "v1", "endpointslices"),
    "Pod": kmock.resource("", "v1", "pods"),
    "Node": kmock.resource("", "v1", "nodes"),
    "ConfigMap": kmock.resource("", "v1", "configmaps"),
    "ReplicaSet": kmock.resource("apps", "v1", "replicasets"),
    "Deployment": kmock.resource("apps", "v1", "deployments"),
    "StatefulSet": kmock.resource("apps", "v1", "statefulsets"),
}
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"


def owned_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """Every field a manager owns by setting it, by its server-side-apply path, with its value."""
    fields: dict[str, Any] = {}
    meta = obj.get("metadata") or {}
    for part in ("labels", "annotations"):
        for key, value in (meta.get(part) or {}).items():
            fields[f".metadata.{part}.{key}"] = value
    for key, value in (obj.get("spec") or {}).items():
        if key == "ports" and isinstance(value, list):
            for port in value:
                item = (
                    f'.spec.ports[port={port.get("port")},protocol="{port.get("protocol", "TCP")}"]'
                )
                for field_name, field_value in port.items():
                    fields[f"{item}.{field_name}"] = field_value
        elif isinstance(value, dict) and key != "selector":  # the selector is atomic
            for sub, sub_value in _flatten(value, f".spec.{key}").items():
                fields[sub] = sub_value
        else:
            fields[f".spec.{key}"] = value
    return fields


def _flatten(value: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(_flatten(item, f"{prefix}.{key}"))
        else:
            flat[f"{prefix}.{key}"] = item
    return flat


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386)."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass
class Manager:
    operation: str  # "Apply" or "Update"
    fields: set[str]

    def printed(self, name: str) -> str:
        """How the API server names a manager in a conflict (printManager)."""
        return f'"{name}"' if self.operation == "Apply" else f'"{name}" using v1'


def conflict_message(conflicts: list[tuple[str, str]]) -> str:
    """The API server's message for an apply refused by conflicts (manager, path)."""
    if len(conflicts) == 1:
        manager, path = conflicts[0]
        return f"Apply failed with 1 conflict: conflict with {manager}: {path}"
    by_manager: dict[str, list[str]] = {}
    for manager, path in conflicts:
        by_manager.setdefault(manager, []).append(path)
    lines = []
    for manager in sorted(by_manager):
        lines.append(f"conflicts with {manager}:")
        lines += [f"- {path}" for path in by_manager[manager]]
    return f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)


def status_error(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    """An error kmock renders as the metav1.Status body the API server sends."""
    return kmock.KubernetesError(status=code, reason=reason, message=message, details=details)


class FakeApiServer:
    """The API server's Service endpoints on 127.0.0.1, in a thread with its own event loop.

    The backend under test is synchronous (urllib3), so the server cannot share its loop.
    ``services`` is what the server stores; ``requests()`` what it was sent.
    """

    def __init__(self, token: str | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.token = token  # when set, requests must carry "Authorization: Bearer <token>"
        self.tls = tls  # when set, HTTPS with this context
        self.services: dict[tuple[str, str], dict[str, Any]] = {}
        self.managers: dict[tuple[str, str], dict[str, Manager]] = {}
        self.node_port_range = NodePortRange()
        self._versions = itertools.count(1)
        self.handler = kmock.KubernetesScaffold()
        self.handler[SERVICES, "patch"] << self._apply
        self.handler[SERVICES, "get"] << self._get
        self.handler[SERVICES, "delete"] << self._delete
        # kind -> {(namespace, name): object}; namespace "" for cluster-scoped kinds
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {k: {} for k in READ_ONLY}
        for kind, resource in READ_ONLY.items():
            self.handler[resource, "get"] << self._reader(kind)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake API server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        server_cls = tls_server_class(self.tls) if self.tls else RawTestServer
        served = kmock.Server(self.handler, host="127.0.0.1", server_cls=server_cls)
        async with self.handler, served as server:
            self.url = str(server.url).rstrip("/")
            self._started.set()
            await self._stop.wait()

    def requests(self, method: str | None = None) -> list[kmock.Request]:
        return [r for r in self.handler if method is None or r.method.value == method.upper()]

    def refuse_applies(self, code: int, reason: str, message: str) -> None:
        """From now on, answer every apply with this error Status (ahead of _apply)."""

        def refuse(_: kmock.Request) -> None:
            raise status_error(code, reason, message)

        self.handler[SERVICES, "patch"] ** 1 << refuse

    # -- the API server's part -------------------------------------------------------------

    def _authorize(self, request: kmock.Request) -> None:
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            raise status_error(401, "Unauthorized", "Unauthorized")

    def _not_found(self, name: str | None) -> kmock.KubernetesError:
        return status_error(
            404, "NotFound", f'services "{name}" not found', name=name, kind="services"
        )

    def add(self, *objects: dict[str, Any]) -> None:
        """Store objects as the API server holds them (Services go where apply puts them)."""
        for obj in objects:
            meta = obj.get("metadata") or {}
            namespace = "" if obj["kind"] == "Node" else meta.get("namespace") or "default"
            store = self.services if obj["kind"] == "Service" else self.objects[obj["kind"]]
            store[(namespace, meta["name"])] = copy.deepcopy(obj)

    def _page(
        self, request: kmock.Request, kind: str, api_version: str, stored: dict
    ) -> dict[str, Any]:
        items = [
            {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
            for (ns, _), obj in sorted(stored.items())
            if request.namespace in (None, ns)
        ]
        # Paged with limit/continue; the continue token is simply the next offset here.
        start = int(request.params.get("continue") or 0)
        stop = start + int(request.params.get("limit") or len(items) or 1)
        meta = {"resourceVersion": str(next(self._versions))}
        if stop < len(items):
            meta["continue"] = str(stop)
        return {
            "apiVersion": api_version,
            "kind": f"{kind}List",
            "metadata": meta,
            "items": items[start:stop],
        }

    def _get(self, request: kmock.Request) -> Any:
        self._authorize(request)
        if request.name is None:
            return self._page(request, "Service", "v1", self.services)
        svc = self.services.get((request.namespace or "", request.name))
        if svc is None:
            raise self._not_found(request.name)
        return svc

    def _reader(self, kind: str) -> Any:
        resource = READ_ONLY[kind]
        api_version = f"{resource.group}/{resource.version}" if resource.group else "v1"

        def read(request: kmock.Request) -> Any:
            self._authorize(request)
            stored = self.objects[kind]
            if request.name is None:
                return self._page(request, kind, api_version, stored)
            found = stored.get((request.namespace or "", request.name))
            if found is None:
                raise status_error(
                    404,
                    "NotFound",
                    f'{resource.plural} "{request.name}" not found',
                    name=request.name,
                    kind=resource.plural,
                )
            return found

        return read

    def _delete(self, request: kmock.Request) -> Any:
        self._authorize(request)
        self.managers.pop((request.namespace or "", request.name or ""), None)
        svc = self.services.pop((request.namespace or "", request.name or ""), None)
        if svc is None:
            raise self._not_found(request.name)
        return svc

    def _apply(self, request: kmock.Request) -> Any:
        self._authorize(request)
        content_type = request.headers.get("Content-Type")
        if content_type not in (APPLY_PATCH, MERGE_PATCH):
            raise status_error(415, "UnsupportedMediaType", "this stand-in does apply and merge")
        manager = request.params.get("fieldManager")
        if not manager:
            raise status_error(400, "BadRequest", "fieldManager is required for apply requests")
        dry_run = request.params.get("dryRun")
        if dry_run not in (None, "All"):
            raise status_error(400, "BadRequest", f"unsupported dryRun value {dry_run!r}")

        namespace, name = request.namespace or "", request.name or ""
        current = self.services.get((namespace, name))
        managers = copy.deepcopy(self.managers.get((namespace, name), {}))
        if content_type == MERGE_PATCH:
            if current is None:
                raise self._not_found(name)
            desired = _merge(current, request.data)
            changed = {
                path
                for path, value in owned_fields(desired).items()
                if owned_fields(current).get(path, object()) != value
            }
            for other in managers.values():
                other.fields -= changed
            mine = managers.setdefault(manager, Manager("Update", set()))
            mine.fields |= changed
        else:
            desired = request.data
            applied = owned_fields(desired)
            live = owned_fields(current or {})
            conflicts = sorted(
                (other.printed(other_name), path)
                for other_name, other in managers.items()
                if other_name != manager
                for path in other.fields & applied.keys()
                if live.get(path) != applied[path]
            )
            if conflicts and request.params.get("force") != "true":
                raise status_error(
                    409,
                    "Conflict",
                    conflict_message(conflicts),
                    causes=[
                        {
                            "reason": "FieldManagerConflict",
                            "message": f"conflict with {m}",
                            "field": p,
                        }
                        for m, p in conflicts
                    ],
                )
            for other_name, other in managers.items():
                if other_name != manager:
                    # forced: the conflicting fields are ours now; same values are shared
                    other.fields -= {
                        p for p in other.fields & applied.keys() if live.get(p) != applied[p]
                    }
            managers[manager] = Manager("Apply", set(applied))

        others = ports_held_by_others(self.services.values(), namespace, name)
        allocated, errors = allocate(desired, current, others, self.node_port_range)
        if errors:
            raise status_error(
                422,
                "Invalid",
                f'Service "{name}" is invalid: ' + ", ".join(str(e) for e in errors),
                name=name,
                kind="Service",
                causes=[
                    {
                        "reason": "FieldValueInvalid",
                        "message": str(e).removeprefix(f"{e.field}: "),
                        "field": e.field,
                    }
                    for e in errors
                ],
            )
        stored = self._with_server_fields(allocated, current, managers)
        if dry_run is None:
            self.services[(namespace, name)] = stored
            self.managers[(namespace, name)] = managers
        return kmock.Response(status=200 if current else 201, payload=stored)

    def _with_server_fields(
        self, applied: dict[str, Any], current: dict[str, Any] | None, managers: dict[str, Manager]
    ) -> dict[str, Any]:
        """What the API server adds to an applied Service: identity, clusterIP, bookkeeping."""
        obj = copy.deepcopy(applied)
        old_meta = (current or {}).get("metadata") or {}
        old_spec = (current or {}).get("spec") or {}
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        obj["metadata"].update(
            uid=old_meta.get("uid") or str(uuid.uuid4()),
            creationTimestamp=old_meta.get("creationTimestamp") or now,
            resourceVersion=str(next(self._versions)),
            managedFields=[
                {"manager": name, "operation": m.operation, "apiVersion": "v1", "time": now}
                for name, m in managers.items()
            ],
        )
        cluster_ip = old_spec.get("clusterIP") or f"10.96.0.{len(self.services) + 10}"
        obj["spec"].update(
            clusterIP=cluster_ip,
            clusterIPs=[cluster_ip],
            ipFamilies=["IPv4"],
            ipFamilyPolicy="SingleStack",
        )
        obj["status"] = {"loadBalancer": {}}
        return obj


@dataclass(frozen=True)
class Pki:
    """A throw-away CA with a server certificate for 127.0.0.1 and a client certificate."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, directory: Path) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-apiserver-ca")])
        ca = _certificate(ca_name, ca_key.public_key(), ca_name, ca_key, is_ca=True)
        paths = {"ca_cert": directory / "ca.crt"}
        paths["ca_cert"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        for who, san in (
            ("server", x509.IPAddress(ipaddress.ip_address("127.0.0.1"))),
            ("client", None),
        ):
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fake-{who}")])
            cert = _certificate(name, key.public_key(), ca_name, ca_key, san=san)
            paths[f"{who}_cert"] = directory / f"{who}.crt"
            paths[f"{who}_key"] = directory / f"{who}.key"
            paths[f"{who}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            paths[f"{who}_key"].write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return cls(**paths)

    def server_context(self) -> ssl.SSLContext:
        """TLS like an API server's: its own certificate, client certificates required."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca_cert))
        context.load_cert_chain(self.server_cert, self.server_key)
        context.verify_mode = ssl.CERT_REQUIRED
        return context


def _certificate(
    subject: x509.Name,
    public_key: Any,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    is_ca: bool = False,
    san: x509.GeneralName | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([san]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def tls_server_class(context: ssl.SSLContext) -> type[RawTestServer]:
    """kmock's server class, serving HTTPS with ``context``."""

    class TLSServer(RawTestServer):
        async def start_server(self, *args: Any, **kwargs: Any) -> None:
            await super().start_server(*args, ssl=context, **kwargs)

    return TLSServer
