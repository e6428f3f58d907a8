"""What doctor reads: Services, EndpointSlices, Pods, Nodes, the workloads that own the pods and
the ConfigMaps an ingress controller names — from a manifest store or the Kubernetes API.

Both sources are read whole before anything is judged. A source that cannot be read (directory
missing, API server down or refusing) raises ``SourceUnreadable``: doctor then says so and never
reports "no findings" for a cluster it did not see. A single file that does not parse is set
aside and reported; the rest is still read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodeport_lb.store import ManifestStore, object_key

# The owners doctor follows from a pod to the workload whose template to fix.
WORKLOAD_KINDS = ("ReplicaSet", "Deployment", "StatefulSet")
NAMESPACED_KINDS = ("Service", "EndpointSlice", "Pod", "ConfigMap", *WORKLOAD_KINDS)


class SourceUnreadable(Exception):
    """The cluster (or manifest directory) could not be read as a whole."""


ObjectRef = tuple[str, str, str]  # (kind, namespace, name)


@dataclass
class ClusterSnapshot:
    source: str
    services: list[dict[str, Any]] = field(default_factory=list)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    workloads: dict[ObjectRef, dict[str, Any]] = field(default_factory=dict)
    config_maps: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    set_aside: list[str] = field(default_factory=list)  # "file: why" for what could not be used

    @classmethod
    def from_objects(
        cls, source: str, objects: Iterable[Mapping[str, Any]], namespace: str | None = None
    ) -> ClusterSnapshot:
        snapshot = cls(source)
        for obj in objects:
            if not isinstance(obj, Mapping):
                continue
            kind = obj.get("kind")
            key = object_key(dict(obj))
            if not isinstance(obj.get("metadata"), Mapping) or not key.name:
                snapshot.set_aside.append(f"{kind or 'object'} without a name: not usable")
                continue
            problem = shape_problem(obj)
            if problem:
                snapshot.set_aside.append(f"{key}: {problem}")
                continue
            if namespace and kind in NAMESPACED_KINDS and key.namespace != namespace:
                continue
            item = dict(obj)
            if kind == "Service":
                snapshot.services.append(item)
            elif kind == "EndpointSlice":
                snapshot.endpoint_slices.append(item)
            elif kind == "Pod":
                snapshot.pods.append(item)
            elif kind == "Node":
                snapshot.nodes.append(item)
            elif kind in WORKLOAD_KINDS:
                snapshot.workloads[(str(kind), key.namespace, key.name)] = item
            elif kind == "ConfigMap":
                snapshot.config_maps[(key.namespace, key.name)] = item
        return snapshot


# Fields doctor reads that must be objects (mappings) when present; lists of objects likewise.
_MAPPINGS = (
    ("metadata", "labels"),
    ("metadata", "annotations"),
    ("spec",),
    ("status",),
    ("spec", "selector"),
    ("spec", "template"),
    ("spec", "template", "metadata"),
    ("spec", "template", "spec"),
    ("data",),
)
_LISTS = (("metadata", "ownerReferences"), ("spec", "ports"), ("endpoints",), ("ports",))


def shape_problem(obj: Mapping[str, Any]) -> str:
    """Why ``obj`` cannot be read safely ("" when it can): a field of the wrong type."""
    for path in _MAPPINGS + _LISTS:
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            continue
        wanted = Mapping if path in _MAPPINGS else list
        if not isinstance(value, wanted) or (
            wanted is list and not all(isinstance(item, Mapping) for item in value)
        ):
            kind = "an object" if wanted is Mapping else "a list of objects"
            return f"{'.'.join(path)} is not {kind}"
    return ""


def read_manifests(path: str | os.PathLike[str], namespace: str | None = None) -> ClusterSnapshot:
    """Every object in a manifest directory (``kubectl get -o yaml`` files, any names)."""
    directory = Path(path)
    if not directory.exists():
        raise SourceUnreadable(f"{directory}: no such directory")
    if not directory.is_dir():
        raise SourceUnreadable(f"{directory}: not a directory")
    try:
        os.listdir(directory)
    except OSError as exc:
        raise SourceUnreadable(f"{directory}: cannot list: {exc.strerror or exc}") from None
    contents = ManifestStore(directory).load()
    snapshot = ClusterSnapshot.from_objects(
        f"manifests {directory}", contents.objects.values(), namespace
    )
    snapshot.set_aside += [str(error) for error in contents.errors]
    return snapshot


def read_kubernetes(
    settings: Mapping[str, Any],
    namespace: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ClusterSnapshot:
    """Everything doctor needs from the API server, read-only (list and get only).

    ``settings`` are the Ansible modules' connection settings (``kubeconfig``, ``context``,
    ``host``, ...); missing ones come from ``K8S_AUTH_*``, then in-cluster, then the default
    kubeconfig, as for every other command.
    """
    from nodeport_lb.doctor.client_address import config_maps_named_by

    try:
        from nodeport_lb.kube_client import KubeSettings
        from nodeport_lb.services.base import BackendError
        from nodeport_lb.services.kube_backend import KubernetesBackend
    except ImportError as exc:
        raise SourceUnreadable(
            f"the Kubernetes client is not installed ({exc}): pip install 'nodeport-lb[kube]'"
        ) from None
    try:
        backend = KubernetesBackend(KubeSettings.resolve(settings, environ))
    except BackendError as exc:
        raise SourceUnreadable(str(exc)) from None
    try:
        objects: list[dict[str, Any]] = []
        for kind in ("Service", "EndpointSlice", "Pod", *WORKLOAD_KINDS):
            objects += backend.list_objects(kind, namespace)
        objects += backend.list_objects("Node")
        snapshot = ClusterSnapshot.from_objects(f"Kubernetes API {backend.host}", objects)
        # ConfigMaps are read one by one, only those an ingress controller says it uses: a
        # cluster-wide ConfigMap list would read every application's configuration.
        for cm_namespace, cm_name in sorted(config_maps_named_by(snapshot.pods)):
            found = backend.get_object("ConfigMap", cm_namespace, cm_name)
            if found is not None:
                snapshot.config_maps[(cm_namespace, cm_name)] = found
        return snapshot
    except BackendError as exc:
        raise SourceUnreadable(str(exc)) from None
    finally:
        backend.close()


def read_source(store: Mapping[str, Any], namespace: str | None = None) -> ClusterSnapshot:
    """The Ansible modules' ``store`` option: ``{path: DIR}`` or Kubernetes settings."""
    store = dict(store or {})
    if store.get("path"):
        return read_manifests(store["path"], namespace)
    settings = {k: v for k, v in store.items() if k != "path" and v is not None}
    return read_kubernetes(settings, namespace)
