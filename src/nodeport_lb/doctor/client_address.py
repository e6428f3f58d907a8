"""eTP Cluster Services whose pods want the client's address.

With externalTrafficPolicy: Cluster the node SNATs every packet to its own address, so a pod
sees a node, not the client. Doctor only says so on a known signal that the pods use the
client's address: an ingress-nginx controller whose ConfigMap (named by its --configmap flag)
turns on use-proxy-protocol, use-forwarded-headers or enable-real-ip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from nodeport_lb.doctor.context import ServiceContext
from nodeport_lb.doctor.findings import HINT, Finding
from nodeport_lb.store import object_key

INGRESS_NGINX_BINARY = "/nginx-ingress-controller"
# ingress-nginx ConfigMap keys that make it read the client's address from the connection
CLIENT_ADDRESS_KEYS = ("use-proxy-protocol", "use-forwarded-headers", "enable-real-ip")


def _ingress_nginx_config_map(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    namespace = object_key(dict(pod)).namespace
    for container in (pod.get("spec") or {}).get("containers") or []:
        words = [str(w) for w in (container.get("command") or []) + (container.get("args") or [])]
        if not any(w.endswith(INGRESS_NGINX_BINARY) for w in words):
            continue
        for i, word in enumerate(words):
            value = None
            if word.startswith("--configmap="):
                value = word.split("=", 1)[1]
            elif word == "--configmap" and i + 1 < len(words):
                value = words[i + 1]
            if value:
                cm_namespace, _, name = value.rpartition("/")
                return (cm_namespace or namespace, name)
    return None


def config_maps_named_by(pods: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    return {ref for pod in pods if (ref := _ingress_nginx_config_map(pod))}


def client_address_findings(
    context: ServiceContext, config_maps: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[Finding]:
    refs = sorted(config_maps_named_by(context.pods))
    for ref in refs:
        data = (config_maps.get(ref) or {}).get("data") or {}
        turned_on = [k for k in CLIENT_ADDRESS_KEYS if str(data.get(k, "")).lower() == "true"]
        if not turned_on:
            continue
        settings = ", ".join(f"{k}: true" for k in turned_on)
        return [
            Finding(
                HINT,
                context.label,
                "client-address",
                f"its ingress-nginx pods read the client's address (ConfigMap {ref[0]}/{ref[1]}: "
                f"{settings}), but externalTrafficPolicy: Cluster SNATs every packet to a node's "
                "address: only a header the load balancer adds itself still carries the client",
                "set externalTrafficPolicy: Local (the pods then see the client's own address; "
                "the load balancer must check the healthCheckNodePort over HTTP), or have the "
                "load balancer send PROXY v2 / X-Forwarded-For and trust only its addresses "
                "(ingress-nginx proxy-real-ip-cidr)",
                {"spec": {"externalTrafficPolicy": "Local"}},
            )
        ]
    return []
