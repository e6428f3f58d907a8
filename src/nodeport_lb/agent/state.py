"""The agent's view of the cluster: the objects it was given, turned into per-Service rules.

Both sources (manifest store, Kubernetes API) feed ``ClusterState.apply`` with the same raw
objects. A Service that does not validate is logged, counted and ignored: the last good version
of that Service stays in force. Only the Services an update touched are computed again, so one
endpoint change at 10,000 Services costs one Service's work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nodeport_lb.agent.endpoints import SliceEndpoints, parse_endpoint_slice
from nodeport_lb.agent.rules import RuleConfig, ServiceRules, compute_service_rules
from nodeport_lb.model import NodePortRange, Service, apply_defaults
from nodeport_lb.store import ObjectKey
from nodeport_lb.validation import validate_service

log = logging.getLogger(__name__)

DRAIN_TAINT = "ToBeDeletedByClusterAutoscaler"


@dataclass
class ApplyResult:
    dirty: set[str] = field(default_factory=set)  # Service keys whose rules may have changed
    invalid: list[str] = field(default_factory=list)  # one message per rejected object
    node_changed: bool = False


class ClusterState:
    def __init__(self, config: RuleConfig, node_port_range: NodePortRange) -> None:
        self.config = config
        self.node_port_range = node_port_range
        self.services: dict[str, Service] = {}
        self._raw_services: dict[str, Any] = {}  # last object seen, to skip unchanged ones
        self.slices: dict[ObjectKey, SliceEndpoints] = {}
        self._slices_of_service: dict[str, set[ObjectKey]] = {}
        self.node: Mapping[str, Any] | None = None
        self.rules: dict[str, ServiceRules] = {}
        # (protocol, nodePort) -> the Service that holds it; later claimants are refused
        self._port_owner: dict[tuple[str, int], str] = {}
        self._refused_ports: dict[str, set[tuple[str, int]]] = {}

    # --- inputs --------------------------------------------------------------------------

    def apply(
        self, upserts: Mapping[ObjectKey, Mapping[str, Any]], deletes: Iterable[ObjectKey]
    ) -> ApplyResult:
        result = ApplyResult()
        for key in deletes:
            self._delete(key, result)
        for key, obj in upserts.items():
            self._upsert(key, obj, result)
        self._recompute(result.dirty)
        return result

    def _delete(self, key: ObjectKey, result: ApplyResult) -> None:
        if key.kind == "Service":
            service_key = f"{key.namespace}/{key.name}"
            self._raw_services.pop(service_key, None)
            if self.services.pop(service_key, None):
                result.dirty.add(service_key)
        elif key.kind == "EndpointSlice":
            old = self.slices.pop(key, None)
            if old:
                service_key = f"{old.namespace}/{old.service_name}"
                self._slices_of_service.get(service_key, set()).discard(key)
                result.dirty.add(service_key)
        elif key.kind == "Node" and key.name == self.config.node_name:
            self.node = None
            result.node_changed = True

    def _upsert(self, key: ObjectKey, obj: Mapping[str, Any], result: ApplyResult) -> None:
        if key.kind == "Service":
            self._upsert_service(key, obj, result)
        elif key.kind == "EndpointSlice":
            parsed = parse_endpoint_slice(obj)
            old = self.slices.get(key)
            if old == parsed:
                return
            if old:
                old_service = f"{old.namespace}/{old.service_name}"
                self._slices_of_service.get(old_service, set()).discard(key)
                result.dirty.add(old_service)
            if parsed is None:
                self.slices.pop(key, None)
                return
            service_key = f"{parsed.namespace}/{parsed.service_name}"
            self.slices[key] = parsed
            self._slices_of_service.setdefault(service_key, set()).add(key)
            result.dirty.add(service_key)
        elif key.kind == "Node" and key.name == self.config.node_name:
            self.node = obj
            result.node_changed = True

    def _upsert_service(self, key: ObjectKey, obj: Mapping[str, Any], result: ApplyResult) -> None:
        service_key = f"{key.namespace}/{key.name}"
        if self._raw_services.get(service_key) == obj:
            return
        self._raw_services[service_key] = obj
        defaulted = apply_defaults(obj)
        errors = validate_service(defaulted, self.node_port_range)
        if errors:
            message = f"Service {service_key} ignored, keeping its last good state: " + "; ".join(
                str(e) for e in errors
            )
            log.warning("%s", message)
            result.invalid.append(message)
            return
        self.services[service_key] = Service.from_manifest(defaulted)
        result.dirty.add(service_key)

    # --- outputs -------------------------------------------------------------------------

    def _recompute(self, dirty: set[str]) -> None:
        # ports a dirty Service gives up may be waited for by a Service refused earlier
        for key in dirty:
            for port in self.rules[key].map_elements() if key in self.rules else ():
                if self._port_owner.get(port) == key:
                    del self._port_owner[port]
        waiting = {k for k, ports in self._refused_ports.items() if ports} - dirty
        # dirty Services first, so one that keeps its port is not beaten to it by a waiter
        for key in [*sorted(dirty), *sorted(waiting)]:
            self._refused_ports.pop(key, None)
            service = self.services.get(key)
            if service is None:
                self.rules.pop(key, None)
                continue
            dirty.add(key)
            blocked = self._claim_ports(service)
            slices = [self.slices[k] for k in self._slices_of_service.get(key, ())]
            self.rules[key] = compute_service_rules(service, slices, self.config, blocked)

    def _claim_ports(self, service: Service) -> frozenset[tuple[str, int]]:
        blocked = set()
        for port in service.ports:
            if not port.node_port:
                continue
            wanted = (port.protocol.lower(), port.node_port)
            owner = self._port_owner.setdefault(wanted, service.key)
            if owner != service.key:
                log.warning(
                    "Service %s: nodePort %s/%d is already used by %s; not programmed",
                    service.key,
                    wanted[0],
                    wanted[1],
                    owner,
                )
                blocked.add(wanted)
        self._refused_ports[service.key] = blocked
        return frozenset(blocked)

    @property
    def node_eligible(self) -> bool:
        """False while the node is being deleted or drained by the cluster autoscaler."""
        if not self.node:
            return True
        meta = self.node.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return False
        taints = (self.node.get("spec") or {}).get("taints") or []
        return not any(isinstance(t, Mapping) and t.get("key") == DRAIN_TAINT for t in taints)
