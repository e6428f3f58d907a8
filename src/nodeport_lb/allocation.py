"""Node-port allocation as the API server does it (pkg/registry/core/service/storage/alloc.go).

nodePorts and healthCheckNodePorts come from ONE pool (the node-port range), shared by every
Service whatever the protocol: a port held by one Service cannot be given to another. Explicit
ports are honoured or refused ("provided port is already allocated"); missing ones are picked at
random among the free ones; on update, ports the Service already holds are kept, so re-running
an apply never moves a nodePort or the healthCheckNodePort.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nodeport_lb.model import NodePortRange, needs_health_check
from nodeport_lb.validation.field import FieldError, Path

ALREADY_ALLOCATED = "provided port is already allocated"
_PORTS = Path("spec").child("ports")
_HCNP = Path("spec").child("healthCheckNodePort")


class RangeFullError(Exception):
    pass


def needs_node_ports(spec: Mapping[str, Any]) -> bool:
    svc_type = spec.get("type")
    return svc_type == "NodePort" or (
        svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False
    )


def held_ports(manifest: Mapping[str, Any]) -> set[int]:
    """Every node port (nodePorts and hcnp) a stored Service holds."""
    spec = manifest.get("spec") or {}
    ports = {
        p["nodePort"]
        for p in spec.get("ports") or []
        if isinstance(p, dict) and isinstance(p.get("nodePort"), int) and p["nodePort"]
    }
    hcnp = spec.get("healthCheckNodePort")
    if isinstance(hcnp, int) and hcnp:
        ports.add(hcnp)
    return ports


def ports_held_by_others(
    services: Iterable[Mapping[str, Any]], namespace: str, name: str
) -> dict[int, str]:
    """port -> "namespace/name" of every other Service's node ports."""
    owners: dict[int, str] = {}
    for svc in services:
        meta = svc.get("metadata") or {}
        if (meta.get("namespace") or "default", meta.get("name")) == (namespace, name):
            continue
        for port in held_ports(svc):
            owners[port] = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    return owners


def cross_service_conflicts(manifests: Sequence[Mapping[str, Any]]) -> list[tuple[int, FieldError]]:
    """Explicit ports that an earlier Service of the same batch already holds."""
    taken: set[int] = set()
    conflicts: list[tuple[int, FieldError]] = []
    for index, manifest in enumerate(manifests):
        spec = manifest.get("spec") if isinstance(manifest.get("spec"), dict) else {}
        ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
        mine: set[int] = set()
        for i, port in enumerate(ports):
            node_port = port.get("nodePort") if isinstance(port, dict) else None
            if isinstance(node_port, int) and node_port in taken:
                conflicts.append(
                    (index, _PORTS.index(i).child("nodePort").invalid(node_port, ALREADY_ALLOCATED))
                )
            elif isinstance(node_port, int) and node_port:
                mine.add(node_port)
        hcnp = spec.get("healthCheckNodePort")
        if isinstance(hcnp, int) and hcnp in taken:
            conflicts.append((index, _HCNP.invalid(hcnp, ALREADY_ALLOCATED)))
        elif isinstance(hcnp, int) and hcnp:
            mine.add(hcnp)
        taken |= mine
    return conflicts


def allocate(
    desired: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    held_by_others: Mapping[int, str],
    node_port_range: NodePortRange,
    rng: random.Random | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Fill in the node ports of a validated, defaulted Service.

    ``current`` is the stored version (None on create): ports it holds are kept for the same
    (name, protocol) port, and its hcnp is kept while the Service still needs one.
    """
    rng = rng or random.SystemRandom()
    svc = copy.deepcopy(dict(desired))
    spec = svc["spec"]
    current_spec = (current or {}).get("spec") or {}
    errors: list[FieldError] = []
    taken = set(held_by_others)

    def claim(port: int, path: Path) -> None:
        if port in held_by_others:
            errors.append(path.invalid(port, ALREADY_ALLOCATED))
        taken.add(port)

    def reusable(port: Any) -> bool:
        """A stored port worth keeping: the store may hold anything (a hand edit), and what is
        kept is written back and printed into rules, configs and commands."""
        return port in node_port_range and port not in taken  # an int inside the range

    def pick() -> int:
        free = [p for p in node_port_range if p not in taken]
        if not free:
            raise RangeFullError(f"no free node port left in range {node_port_range}")
        port = rng.choice(free)
        taken.add(port)
        return port

    ports = spec.get("ports") or []
    if needs_node_ports(spec):
        previous = {
            (p.get("name") or "", p.get("protocol")): p.get("nodePort")
            for p in current_spec.get("ports") or []
            if isinstance(p, dict) and p.get("nodePort")
        }
        for i, port in enumerate(ports):
            if port.get("nodePort"):
                claim(port["nodePort"], _PORTS.index(i).child("nodePort"))
        by_number: dict[int, int] = {}  # TCP and UDP on one port number share a nodePort
        for port in ports:
            if not port.get("nodePort"):
                kept = previous.get((port.get("name") or "", port.get("protocol")))
                if reusable(kept):
                    port["nodePort"] = kept
                    taken.add(kept)
                elif port["port"] in by_number:
                    port["nodePort"] = by_number[port["port"]]
                else:
                    port["nodePort"] = pick()
            by_number.setdefault(port["port"], port["nodePort"])
    else:
        for port in ports:
            if spec.get("type") == "ClusterIP":
                port.pop("nodePort", None)

    if needs_health_check(spec):
        if spec.get("healthCheckNodePort"):
            claim(spec["healthCheckNodePort"], _HCNP)
        else:
            kept = current_spec.get("healthCheckNodePort")
            if reusable(kept):
                spec["healthCheckNodePort"] = kept
                taken.add(kept)
            else:
                spec["healthCheckNodePort"] = pick()
    else:
        # Released when the Service stops being LoadBalancer + Local.
        spec.pop("healthCheckNodePort", None)
    return svc, errors
