"""Node-port allocation as the API server does it (pkg/registry/core/service/storage/alloc.go).

nodePorts and healthCheckNodePorts come from ONE pool (the node-port range), shared by every
Service whatever the protocol: a port held by one Service cannot be given to another, nor to a
second port number of the same Service. Ports of one Service with the same port number (TCP and
UDP on 53) share one nodePort. Explicit ports are honoured or refused with the allocator's
message ("provided port is already allocated", "provided port is not in the valid range...");
the API server stops at the first refusal, so only that one is reported. Missing ports are
picked among the free ones; on update, ports the Service already holds are kept, so re-running
an apply never moves a nodePort or the healthCheckNodePort.

Picks are drawn from a generator seeded with the Service's namespace/name: the same store gives
the same ports, so a check-mode run reports exactly what the real run will allocate. (The API
server picks at random; any free port is as good as another, so this changes nothing a client
can rely on.) A pick also never takes a port that a later port of the same Service asks for,
where the API server could, by bad luck, refuse its own allocation.
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
    """shouldAllocateNodePorts: NodePort, or LoadBalancer unless allocation is turned off."""
    svc_type = spec.get("type")
    return svc_type == "NodePort" or (
        svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False
    )


def _port_number(value: Any) -> int:
    """A node port as the allocator sees it: 0 (none) for anything that is not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def held_ports(manifest: Mapping[str, Any]) -> set[int]:
    """Every node port (nodePorts and hcnp) a stored Service holds."""
    spec = manifest.get("spec") or {}
    ports = {
        _port_number(p.get("nodePort"))
        for p in spec.get("ports") or []
        if isinstance(p, dict) and _port_number(p.get("nodePort"))
    }
    hcnp = _port_number(spec.get("healthCheckNodePort"))
    if hcnp:
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
        spec = manifest.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        ports = spec.get("ports")
        if not isinstance(ports, list):
            ports = []
        mine: set[int] = set()
        for i, port in enumerate(ports):
            node_port = _port_number(port.get("nodePort")) if isinstance(port, dict) else 0
            if node_port in taken:
                conflicts.append(
                    (index, _PORTS.index(i).child("nodePort").invalid(node_port, ALREADY_ALLOCATED))
                )
            elif node_port:
                mine.add(node_port)
        hcnp = _port_number(spec.get("healthCheckNodePort"))
        if hcnp in taken:
            conflicts.append((index, _HCNP.invalid(hcnp, ALREADY_ALLOCATED)))
        elif hcnp:
            mine.add(hcnp)
        taken |= mine
    return conflicts


def explicit_port_refusal(
    manifest: Mapping[str, Any], node_port_range: NodePortRange
) -> FieldError | None:
    """What the allocator refuses among the ports a new Service asks for, before validation
    runs (the API server allocates first, so this is the only error a user then sees)."""
    svc = dict(manifest)
    spec = svc.get("spec")
    if isinstance(spec, dict):
        # what allocating changes, copied (the Service's spec and ports): nothing else is
        # touched, and a deep copy of every Service is most of the cost of checking 10,000
        spec = svc["spec"] = dict(spec)
        if isinstance(spec.get("ports"), list):
            spec["ports"] = [dict(p) if isinstance(p, dict) else p for p in spec["ports"]]
    errors = _allocate_in_place(svc, None, {}, node_port_range, fill_missing=False)
    return errors[0] if errors else None


def allocate(
    desired: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    held_by_others: Mapping[int, str],
    node_port_range: NodePortRange,
    fill_missing: bool = True,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Fill in the node ports of a defaulted Service; returns it and the allocator's refusal.

    ``current`` is the stored version (None on create): ports it holds are kept for the same
    (name, protocol) port, and its hcnp is kept while the Service still needs one. With
    ``fill_missing=False`` only explicit ports are checked (nothing is picked).
    """
    svc = copy.deepcopy(dict(desired))
    return svc, _allocate_in_place(svc, current, held_by_others, node_port_range, fill_missing)


def _allocate_in_place(
    svc: dict[str, Any],
    current: Mapping[str, Any] | None,
    held_by_others: Mapping[int, str],
    node_port_range: NodePortRange,
    fill_missing: bool,
) -> list[FieldError]:
    """``allocate`` on ``svc`` itself: sets or removes fields of its spec and of its ports'
    dicts, nothing else."""
    spec = svc.get("spec")
    if not isinstance(spec, dict):
        return []
    current_spec = (current or {}).get("spec") or {}
    listed = spec.get("ports")
    ports = [p for p in listed if isinstance(p, dict)] if isinstance(listed, list) else []
    meta = svc.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    seed = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
    rng: random.Random | None = None  # seeding costs more than the rest: only when picking
    taken = set(held_by_others)
    asked_for = {_port_number(p.get("nodePort")) for p in ports} | {
        _port_number(spec.get("healthCheckNodePort"))
    }
    # What the stored version holds is kept further down; a fresh pick must not take it first.
    held_before = held_ports(current or {})

    def claim(port: int, path: Path) -> FieldError | None:
        if port not in node_port_range:
            return path.invalid(port, node_port_range.out_of_range())
        if port in taken:
            return path.invalid(port, ALREADY_ALLOCATED)
        taken.add(port)
        return None

    def pick() -> int:
        nonlocal rng
        rng = rng or random.Random(seed)
        free = [
            p
            for p in node_port_range
            if p not in taken and p not in asked_for and p not in held_before
        ]
        if not free:
            raise RangeFullError(f"no free node port left in range {node_port_range}")
        port = rng.choice(free)
        taken.add(port)
        return port

    def keep(port: Any) -> int:
        """A port the stored version holds, when nobody else has taken it meanwhile."""
        port = _port_number(port)
        if port and port in node_port_range and port not in taken and port not in asked_for:
            taken.add(port)
            return port
        return 0

    if spec.get("type") in ("NodePort", "LoadBalancer"):
        previous = {
            (p.get("name") or "", p.get("protocol")): p.get("nodePort")
            for p in current_spec.get("ports") or []
            if isinstance(p, dict) and _port_number(p.get("nodePort"))
        }
        by_number: dict[Any, int] = {}  # port number -> its nodePort, shared across protocols
        for i, port in enumerate(ports):
            requested = _port_number(port.get("nodePort"))
            if not requested and not needs_node_ports(spec):
                continue  # allocation is off: explicit ports only
            number = (
                port.get("port") if isinstance(port.get("port"), int) else repr(port.get("port"))
            )
            path = _PORTS.index(i).child("nodePort")
            shared = by_number.get(number)
            if not shared:
                # The first nodePort any port with this number asks for, wherever it stands.
                wanted = next(
                    (
                        _port_number(p.get("nodePort"))
                        for p in ports
                        if p.get("port") == port.get("port") and _port_number(p.get("nodePort"))
                    ),
                    0,
                )
                if wanted:
                    if refusal := claim(wanted, path):
                        return [refusal]
                    port["nodePort"] = wanted
                elif fill_missing:
                    kept = keep(previous.get((port.get("name") or "", port.get("protocol"))))
                    port["nodePort"] = kept or pick()
                else:
                    continue
                by_number[number] = port["nodePort"]
            elif requested != shared:
                if not requested:
                    port["nodePort"] = shared
                elif refusal := claim(requested, path):
                    return [refusal]
    elif spec.get("type") == "ClusterIP":
        for port in ports:
            port.pop("nodePort", None)

    if needs_health_check(spec):
        hcnp = _port_number(spec.get("healthCheckNodePort"))
        if hcnp:
            if refusal := claim(hcnp, _HCNP):
                return [refusal]
        elif fill_missing:
            spec["healthCheckNodePort"] = keep(current_spec.get("healthCheckNodePort")) or pick()
    else:
        # Released when the Service stops being LoadBalancer + Local.
        spec.pop("healthCheckNodePort", None)
    return []
