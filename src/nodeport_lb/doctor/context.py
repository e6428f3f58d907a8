"""One Service as doctor sees it: its ready endpoints per node, its pods and their workloads.

Endpoints come from the Service's EndpointSlices, read as the node agent reads them. A manifest
directory written by hand often has no EndpointSlices; then the pods the selector matches stand
in for them (scheduled, Running and Ready ones, as the endpointslice controller would list them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeport_lb.agent.endpoints import SliceEndpoints, endpoints_for_port, parse_endpoint_slice
from nodeport_lb.doctor.snapshot import ClusterSnapshot, ObjectRef
from nodeport_lb.model import Service
from nodeport_lb.store import object_key

# kubelet's default when a pod spec does not say (pkg/apis/core/v1 defaults)
DEFAULT_TERMINATION_GRACE_SECONDS = 30


@dataclass
class Workload:
    """What owns a set of the Service's pods: a Deployment, StatefulSet, ReplicaSet, or the
    pods themselves (no owner doctor can read)."""

    ref: ObjectRef
    obj: Mapping[str, Any] | None  # None: the owner was not in the snapshot
    pods: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        kind, namespace, name = self.ref
        return f"{kind} {namespace}/{name}"

    @property
    def pod_spec(self) -> Mapping[str, Any]:
        """The pod template's spec (a bare pod's own spec)."""
        if self.obj is None:
            return (self.pods[0].get("spec") or {}) if self.pods else {}
        if self.ref[0] == "Pod":
            return self.obj.get("spec") or {}
        return ((self.obj.get("spec") or {}).get("template") or {}).get("spec") or {}

    @property
    def pod_labels(self) -> dict[str, str]:
        if self.obj is not None and self.ref[0] != "Pod":
            spec = self.obj.get("spec") or {}
            selector = (spec.get("selector") or {}).get("matchLabels")
            if selector:
                return dict(selector)
            return dict(((spec.get("template") or {}).get("metadata") or {}).get("labels") or {})
        if self.pods:
            return dict((self.pods[0].get("metadata") or {}).get("labels") or {})
        return {}

    @property
    def replicas(self) -> int | None:
        if self.obj is None or self.ref[0] == "Pod":
            return None
        value = (self.obj.get("spec") or {}).get("replicas", 1)
        return value if isinstance(value, int) else None


@dataclass
class ServiceContext:
    service: Service
    ready_by_node: dict[str, int]  # node -> ready endpoints (deduplicated by address)
    pods: list[Mapping[str, Any]]
    endpoints_from: str  # "EndpointSlices" | "pods" (no slices in the snapshot)

    @property
    def label(self) -> str:
        return f"Service {self.service.key}"


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp") or status.get("phase") != "Running":
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    )


@dataclass
class SnapshotIndex:
    """The snapshot's slices and pods looked up by Service and namespace, built once: a
    cluster of thousands of Services must not re-read every slice for each one."""

    slices: dict[tuple[str, str], list[tuple[Mapping[str, Any], SliceEndpoints]]]
    pods_by_label: dict[tuple[str, str, str], list[Mapping[str, Any]]]  # (ns, key, value)
    pods_by_name: dict[tuple[str, str], Mapping[str, Any]]

    @classmethod
    def build(cls, snapshot: ClusterSnapshot) -> SnapshotIndex:
        index = cls({}, {}, {})
        for obj in snapshot.endpoint_slices:
            parsed = parse_endpoint_slice(obj)
            if parsed:
                service = (parsed.namespace, parsed.service_name)
                index.slices.setdefault(service, []).append((obj, parsed))
        for pod in snapshot.pods:
            key = object_key(pod)
            index.pods_by_name[(key.namespace, key.name)] = pod
            for label, value in ((pod.get("metadata") or {}).get("labels") or {}).items():
                index.pods_by_label.setdefault((key.namespace, label, value), []).append(pod)
        return index

    def selected(self, service: Service) -> list[Mapping[str, Any]]:
        """The pods the Service's selector matches (none without a selector)."""
        if not service.selector:
            return []
        candidates = min(
            (
                self.pods_by_label.get((service.namespace, k, v), [])
                for k, v in service.selector.items()
            ),
            key=len,
        )
        return [
            pod
            for pod in candidates
            if selector_matches(service.selector, (pod.get("metadata") or {}).get("labels") or {})
        ]


def service_context(index: SnapshotIndex, service: Service) -> ServiceContext:
    slices = index.slices.get((service.namespace, service.name), [])
    if slices:
        parsed = [one for _, one in slices]
        addresses: dict[str, set[str]] = {}
        for port in service.ports:
            for endpoint in endpoints_for_port(parsed, port.name, port.protocol):
                if endpoint.ready and endpoint.node_name:
                    addresses.setdefault(endpoint.node_name, set()).add(endpoint.address)
        names = _target_pod_names([raw for raw, _ in slices], service.namespace)
        pods = [index.pods_by_name[name] for name in sorted(names) if name in index.pods_by_name]
        return ServiceContext(
            service,
            {node: len(found) for node, found in sorted(addresses.items())},
            pods or index.selected(service),
            "EndpointSlices",
        )
    selected = index.selected(service)
    ready: dict[str, int] = {}
    for pod in selected:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and _pod_ready(pod):
            ready[node] = ready.get(node, 0) + 1
    return ServiceContext(service, dict(sorted(ready.items())), selected, "pods")


def _target_pod_names(slices: list[Mapping[str, Any]], namespace: str) -> set[tuple[str, str]]:
    names = set()
    for obj in slices:
        for raw in obj.get("endpoints") or []:
            ref = raw.get("targetRef") if isinstance(raw, Mapping) else None
            if isinstance(ref, Mapping) and ref.get("kind") == "Pod" and ref.get("name"):
                names.add((str(ref.get("namespace") or namespace), str(ref["name"])))
    return names


def _controller_of(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(owner, Mapping) and owner.get("controller") and owner.get("kind"):
            return str(owner["kind"]), str(owner.get("name") or "")
    return None


def workloads_of(snapshot: ClusterSnapshot, pods: list[Mapping[str, Any]]) -> list[Workload]:
    """The workloads behind ``pods``: pod -> ReplicaSet -> Deployment, pod -> StatefulSet;
    pods without a readable owner are grouped as themselves."""
    found: dict[ObjectRef, Workload] = {}
    for pod in pods:
        key = object_key(pod)
        ref: ObjectRef = ("Pod", key.namespace, key.name)
        obj: Mapping[str, Any] | None = pod
        owner = _controller_of(pod)
        if owner:
            ref, obj = (
                (owner[0], key.namespace, owner[1]),
                snapshot.workloads.get((owner[0], key.namespace, owner[1])),
            )
            if ref[0] == "ReplicaSet" and obj is not None:
                parent = _controller_of(obj)
                if parent and parent[0] == "Deployment":
                    ref = ("Deployment", key.namespace, parent[1])
                    obj = snapshot.workloads.get(ref)
        found.setdefault(ref, Workload(ref, obj)).pods.append(pod)
    return [found[ref] for ref in sorted(found)]


def termination_grace(workload: Workload) -> int:
    value = workload.pod_spec.get("terminationGracePeriodSeconds")
    return value if isinstance(value, int) else DEFAULT_TERMINATION_GRACE_SECONDS
