"""Kubernetes objects as `kubectl get -o yaml` prints them, for doctor's cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodeport_lb.store import ManifestStore


def service(
    name: str,
    *,
    namespace: str = "default",
    type: str = "LoadBalancer",
    policy: str = "Local",
    selector: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    hcnp: int | None = 31897,
    node_port: int = 31001,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "type": type,
        "selector": selector or {"app": name},
        "ports": [
            {
                "name": "http",
                "port": 80,
                "targetPort": 8080,
                "nodePort": node_port,
                "protocol": "TCP",
            }
        ],
        "externalTrafficPolicy": policy,
    }
    if hcnp and type == "LoadBalancer" and policy == "Local":
        spec["healthCheckNodePort"] = hcnp
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def node(name: str, address: str = "", provider_id: str = "") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
    if provider_id:
        obj["spec"] = {"providerID": provider_id}
    if address:
        obj["status"] = {"addresses": [{"type": "InternalIP", "address": address}]}
    return obj


def deployment(
    name: str,
    replicas: int,
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    pod_spec: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """A Deployment and its ReplicaSet (owned by it, as the controller names it)."""
    labels = labels or {"app": name}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "app", "image": "app:1"}], **(pod_spec or {})},
    }
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "controller": True}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{name}-5d4f8",
                "namespace": namespace,
                "ownerReferences": [owner],
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": template,
            },
        },
    ]


def pods(
    owner: str,
    per_node: dict[str, int],
    *,
    namespace: str = "default",
    labels: dict[str, str] | None = None,
    owner_kind: str = "ReplicaSet",
    pod_spec: dict[str, Any] | None = None,
    first_address: int = 10,
) -> list[dict[str, Any]]:
    """Running, Ready pods of ``owner`` (a ReplicaSet name, or "" for bare pods) per node."""
    labels = labels or {"app": owner.split("-")[0] if owner else "app"}
    made = []
    index = first_address
    for node_name, count in per_node.items():
        for _ in range(count):
            meta: dict[str, Any] = {
                "name": f"{owner or 'pod'}-{index}",
                "namespace": namespace,
                "labels": labels,
            }
            if owner:
                meta["ownerReferences"] = [
                    {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": True}
                ]
            made.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": meta,
                    "spec": {
                        "nodeName": node_name,
                        "containers": [{"name": "app", "image": "app:1"}],
                        **(pod_spec or {}),
                    },
                    "status": {
                        "phase": "Running",
                        "podIP": f"10.244.0.{index}",
                        "conditions": [{"type": "Ready", "status": "True"}],
                    },
                }
            )
            index += 1
    return made


def endpoint_slice(svc: dict[str, Any], pod_objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The slice the endpointslice controller writes for these (ready) pods."""
    name = svc["metadata"]["name"]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{name}-abcde",
            "namespace": svc["metadata"]["namespace"],
            "labels": {"kubernetes.io/service-name": name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": p["spec"]["nodeName"],
                "targetRef": {
                    "kind": "Pod",
                    "namespace": p["metadata"]["namespace"],
                    "name": p["metadata"]["name"],
                },
            }
            for p in pod_objects
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }


def write_store(directory: Path, objects: list[dict[str, Any]]) -> Path:
    store = ManifestStore(directory)
    for obj in objects:
        store.write(obj)
    return directory
