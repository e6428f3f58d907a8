"""EndpointSlices for the lab's pods, computed like Kubernetes' endpointslice controller.

For every Service in the store that has a selector, the pods whose labels match become endpoints
of a ``discovery.k8s.io/v1`` EndpointSlice labelled ``kubernetes.io/service-name``. Ports are the
Service's ports with ``targetPort`` resolved against each pod (named ports too); pods that
resolve to different port numbers land in different slices, as upstream does. Slices are named
``<service>-<5 chars>`` with a suffix derived from the Service and its ports, so a re-sync
rewrites the same files instead of piling up new ones. Only slices carrying our managed-by label
are ever changed or removed.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nodeport_lb.agent.endpoints import LAST_CHANGE_TRIGGER_TIME
from nodeport_lb.lab.state import LabPod
from nodeport_lb.store import ManifestStore, ObjectKey

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "nodeport-lb-lab"
# the alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alikes)
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

SlicePort = tuple[str, int, str]  # (name, port, protocol)


def selector_matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    """A Service selects a pod when every selector pair is among the pod's labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def resolve_target_port(service_port: dict[str, Any], pod: LabPod) -> int | None:
    """The pod port a Service port sends to; None when a named targetPort does not exist."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for port in pod.ports:
        if port.name == target and port.protocol == protocol:
            return port.port
    return None


def _suffix(*parts: str) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(_SUFFIX_ALPHABET[b % len(_SUFFIX_ALPHABET)] for b in digest[:5])


def _endpoint(pod: LabPod) -> dict[str, Any]:
    return {
        "addresses": [pod.address],
        # rm keeps a pod serving through its grace period, like a pod that drains (KEP-1669)
        "conditions": {
            "ready": pod.phase == "running",
            "serving": pod.phase in ("running", "terminating"),
            "terminating": pod.phase == "terminating",
        },
        "nodeName": pod.node,
        "targetRef": {
            "kind": "Pod",
            "namespace": pod.namespace,
            "name": pod.name,
            "uid": pod.uid,
        },
    }


def slices_for_service(service: dict[str, Any], pods: Iterable[LabPod]) -> list[dict[str, Any]]:
    meta = service.get("metadata") or {}
    spec = service.get("spec") or {}
    name, namespace = meta.get("name", ""), meta.get("namespace") or "default"
    selector = spec.get("selector")
    if not selector or spec.get("type") == "ExternalName":
        return []  # selector-less Services have hand-made endpoints
    groups: dict[tuple[SlicePort, ...], list[LabPod]] = {}
    for pod in sorted(pods, key=lambda p: p.name):
        if pod.namespace != namespace or not selector_matches(selector, pod.labels):
            continue
        ports: list[SlicePort] = []
        for service_port in spec.get("ports") or []:
            target = resolve_target_port(service_port, pod)
            if target is not None:
                protocol = service_port.get("protocol", "TCP")
                ports.append((service_port.get("name", ""), target, protocol))
        groups.setdefault(tuple(ports), []).append(pod)
    if not groups:
        groups[()] = []  # upstream keeps one empty slice for a selector with no pods
    return [
        _slice(service, name, namespace, list(ports), members)
        for ports, members in sorted(groups.items())
    ]


def _slice(
    service: dict[str, Any],
    service_name: str,
    namespace: str,
    ports: list[SlicePort],
    pods: list[LabPod],
) -> dict[str, Any]:
    ports_key = ",".join(f"{n}:{p}/{proto}" for n, p, proto in ports)
    owner = {
        "apiVersion": "v1",
        "kind": "Service",
        "name": service_name,
        "blockOwnerDeletion": True,
        "controller": True,
    }
    if uid := (service.get("metadata") or {}).get("uid"):
        owner["uid"] = uid
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{_suffix(namespace, service_name, ports_key)}",
            "namespace": namespace,
            "labels": {SERVICE_NAME_LABEL: service_name, MANAGED_BY_LABEL: MANAGED_BY},
            "ownerReferences": [owner],
        },
        "addressType": "IPv4",
        "endpoints": [_endpoint(pod) for pod in pods],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports],
    }


def desired_slices(
    services: Iterable[dict[str, Any]], pods: Iterable[LabPod]
) -> list[dict[str, Any]]:
    pods = list(pods)
    return [s for service in services for s in slices_for_service(service, pods)]


def services_of_pod(services: Iterable[dict[str, Any]], pod: LabPod) -> list[str]:
    """Names of the Services that select this pod (for `lab status`)."""
    return sorted(
        (svc.get("metadata") or {}).get("name", "")
        for svc in services
        if ((svc.get("metadata") or {}).get("namespace") or "default") == pod.namespace
        and selector_matches((svc.get("spec") or {}).get("selector"), pod.labels)
    )


def sync_endpoint_slices(store: ManifestStore, pods: Iterable[LabPod]) -> list[str]:
    """Make the store's lab-managed EndpointSlices match the pods; return what changed."""
    changes: list[str] = []
    with store.locked():
        contents = store.load()
        wanted = desired_slices(contents.of_kind("Service"), pods)
        wanted_keys = set()
        for slice_ in wanted:
            meta = slice_["metadata"]
            wanted_keys.add((meta["namespace"], meta["name"]))
            current = contents.objects.get(
                ObjectKey("EndpointSlice", meta["namespace"], meta["name"])
            )
            if _without_trigger_time(current) != slice_:
                # unchanged slices are not rewritten: no agent churn. A rewritten one says
                # when, as Kubernetes' controller does (the agents' network programming time).
                stamped = copy.deepcopy(slice_)
                stamped["metadata"]["annotations"] = {
                    LAST_CHANGE_TRIGGER_TIME: datetime.now(UTC).isoformat(timespec="microseconds")
                }
                store.write(stamped)
                changes.append(f"wrote EndpointSlice {meta['namespace']}/{meta['name']}")
        for existing in contents.of_kind("EndpointSlice"):
            meta = existing.get("metadata") or {}
            ours = (meta.get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
            key = (meta.get("namespace") or "default", meta.get("name", ""))
            if ours and key not in wanted_keys:
                store.delete("EndpointSlice", *key)
                changes.append(f"removed EndpointSlice {key[0]}/{key[1]}")
    return changes


def _without_trigger_time(slice_: dict[str, Any] | None) -> dict[str, Any] | None:
    if slice_ is None:
        return None
    bare = copy.deepcopy(slice_)
    annotations = bare.get("metadata", {}).get("annotations") or {}
    annotations.pop(LAST_CHANGE_TRIGGER_TIME, None)
    if not annotations:
        bare.get("metadata", {}).pop("annotations", None)
    return bare
