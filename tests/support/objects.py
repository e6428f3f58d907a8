"""Kubernetes objects as the store holds them (the shape `kubectl get -o yaml` prints)."""

from __future__ import annotations

from typing import Any

Endpoint = tuple[str, str]  # (address, nodeName)


def service(
    name: str,
    ports: list[dict[str, Any]],
    *,
    type: str = "NodePort",
    local: bool = False,
    hcnp: int | None = None,
    affinity_timeout: int | None = None,
    source_ranges: list[str] | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": type, "ports": ports, "selector": {"app": name}}
    if local:
        spec["externalTrafficPolicy"] = "Local"
    if hcnp:
        spec["healthCheckNodePort"] = hcnp
    if affinity_timeout:
        spec["sessionAffinity"] = "ClientIP"
        spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": affinity_timeout}}
    if source_ranges:
        spec["loadBalancerSourceRanges"] = source_ranges
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def endpoint_slice(
    service_name: str,
    port: int,
    endpoints: list[dict[str, Any]],
    *,
    port_name: str = "",
    protocol: str = "TCP",
    namespace: str = "default",
    suffix: str = "abcde",
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-{suffix}",
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service_name},
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": protocol}],
        "endpoints": endpoints,
    }


def endpoint(
    address: str,
    node: str,
    *,
    ready: bool = True,
    serving: bool | None = None,
    terminating: bool = False,
) -> dict[str, Any]:
    return {
        "addresses": [address],
        "nodeName": node,
        "conditions": {
            "ready": ready,
            "serving": ready if serving is None else serving,
            "terminating": terminating,
        },
    }
