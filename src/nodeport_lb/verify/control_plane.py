"""What the control plane says now: Services and EndpointSlices, from the manifest store or
the Kubernetes API (the inventory's ``nodeport_lb_store``, as the Services role uses it).

The verification compares every host with this, never a host with itself: a node's hcnp is
right when it matches the EndpointSlices, HAProxy is right when it checks the live hcnp.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeport_lb.agent.endpoints import (
    Endpoint,
    InvalidEndpointSlice,
    SliceEndpoints,
    endpoints_for_port,
    local_ready_count,
    parse_endpoint_slice,
)
from nodeport_lb.model import NodePortRange, Service, apply_defaults
from nodeport_lb.store import ManifestStore
from nodeport_lb.validation import validate_service


@dataclass
class ControlPlane:
    source: str
    manifests: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/name" -> Service
    slices: dict[str, list[SliceEndpoints]] = field(default_factory=dict)

    @classmethod
    def from_objects(
        cls, source: str, services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping]
    ) -> ControlPlane:
        plane = cls(source)
        for manifest in services:
            # validated as the agent does (any port range: verify does not know the cluster's),
            # so nothing unchecked reaches a probe's command line
            if validate_service(apply_defaults(manifest), NodePortRange(1, 65535)):
                continue  # the agent ignores it too: expect what it does
            meta = manifest.get("metadata") or {}
            key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
            plane.manifests[key] = dict(manifest)
        for obj in slices:
            try:
                parsed = parse_endpoint_slice(obj)  # validated as the agent does
            except InvalidEndpointSlice:
                continue  # the agent sets it aside too: expect what it does
            if parsed:
                key = f"{parsed.namespace}/{parsed.service_name}"
                plane.slices.setdefault(key, []).append(parsed)
        return plane

    @classmethod
    def load(cls, store: Mapping[str, Any] | None) -> ControlPlane:
        """``store`` is the inventory's ``nodeport_lb_store``: ``{path}`` or kube settings."""
        store = dict(store or {})
        if store.get("path"):
            contents = ManifestStore(store["path"]).load()
            return cls.from_objects(
                f"store {store['path']}",
                contents.of_kind("Service"),
                contents.of_kind("EndpointSlice"),
            )
        return cls._from_kubernetes(store)

    @classmethod
    def _from_kubernetes(cls, settings: Mapping[str, Any]) -> ControlPlane:
        from kubernetes import client  # the [kube] extra; only needed in this mode

        from nodeport_lb.services.kube_backend import KubernetesBackend

        options = {k: v for k, v in settings.items() if k != "path" and v is not None}
        backend = KubernetesBackend.from_settings(**options)
        try:
            discovery = client.DiscoveryV1Api(backend.api_client)
            items = discovery.list_endpoint_slice_for_all_namespaces().items
            slices = [backend.api_client.sanitize_for_serialization(i) for i in items]
            return cls.from_objects(f"Kubernetes API {backend.host}", backend.list(), slices)
        finally:
            backend.close()

    def service(self, key: str) -> Service | None:
        manifest = self.manifests.get(key)
        return Service.from_manifest(manifest) if manifest else None

    def endpoints(self, service: Service) -> list[Endpoint]:
        """Every endpoint of every port, as the agent counts them for the hcnp."""
        slices = self.slices.get(service.key, [])
        return [e for p in service.ports for e in endpoints_for_port(slices, p.name, p.protocol)]

    def local_ready(self, service: Service, node: str) -> int:
        return local_ready_count(self.endpoints(service), node)
