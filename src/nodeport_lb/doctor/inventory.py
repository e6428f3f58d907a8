"""Doctor for the Services an inventory manages: the load balancer in front is nodeport-lb's
HAProxy (when the Service's ``load_balancer`` is enabled), so its check timing and its
agent-check weighting come from the same settings the haproxy role uses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from nodeport_lb.doctor.diagnose import DoctorOptions, FrontingLoadBalancer, diagnose
from nodeport_lb.doctor.findings import Finding
from nodeport_lb.doctor.snapshot import ClusterSnapshot
from nodeport_lb.loadbalancer import HAProxySettings, LoadBalancerOptions, PlanError
from nodeport_lb.model import Service

_HAPROXY_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}


def haproxy_seconds(text: str) -> float:
    """An HAProxy time ("2s", "500ms"; a bare number is milliseconds) in seconds."""
    match = re.fullmatch(r"([0-9]+)(us|ms|s|m|h|d)?", str(text).strip())
    if not match:
        raise PlanError(f"{text!r} is not an HAProxy time (like 2s or 500ms)")
    return int(match[1]) * _HAPROXY_UNITS[match[2] or "ms"]


def haproxy_front(
    manifest: Mapping[str, Any],
    load_balancer: Mapping[str, Any] | None,
    inter: str | None = None,
    fall: int | None = None,
) -> FrontingLoadBalancer | None:
    """nodeport-lb's HAProxy in front of this Service, or None when it does not front it."""
    service = Service.from_manifest(manifest)
    options = LoadBalancerOptions.parse(
        load_balancer,
        service_type=service.type,
        local=service.is_local,
        where=f"{service.key}.load_balancer",
    )
    if not options.enabled:
        return None
    defaults = HAProxySettings()
    return FrontingLoadBalancer(
        name="nodeport-lb's HAProxy",
        interval=haproxy_seconds(inter or defaults.inter),
        fall=int(fall or defaults.fall),
        weights_by_pods=options.agent_check,
    )


def managed_load_balancers(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """ "namespace/name" -> its ``load_balancer`` settings (None when it has none), for each
    Service entry of the services role that is kept (``state`` other than absent)."""
    return {
        f"{entry.get('namespace') or 'default'}/{entry['name']}": entry.get("load_balancer")
        for entry in entries
        if (entry.get("state") or "present") != "absent"
    }


def findings_for(
    snapshot: ClusterSnapshot,
    manifests: Sequence[Mapping[str, Any]],
    load_balancers: Mapping[str, Mapping[str, Any] | None],
    inter: str | None = None,
    fall: int | None = None,
) -> dict[str, list[Finding]]:
    """Findings per managed Service ("namespace/name"), with its HAProxy settings."""
    fronts = {}
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        front = haproxy_front(manifest, load_balancers.get(key), inter, fall)
        if front is not None:
            fronts[key] = front
    result = {}
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        options = DoctorOptions(fronts=fronts, only=frozenset({key}))
        result[key] = diagnose(snapshot, options)
    return result
