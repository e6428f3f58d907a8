"""The agent's view of the cluster: the objects it was given, turned into per-Service rules.

Both sources (manifest store, Kubernetes API) feed ``ClusterState.apply`` with the same raw
objects. An object that does not validate is logged (with the file it came from), counted and
ignored: the last good version of that object stays in force; an endpoint that does not
validate is left out alone. Only the Services an update touched are computed again, so one
endpoint change at 10,000 Services costs one Service's work.

Two Services claiming one nodePort (or healthCheckNodePort) cannot both have it: the older
one (creationTimestamp, then namespace/name) keeps it, as the API server would have refused
the younger one; the younger one's contested port is set aside and reported.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nodeport_lb.agent.endpoints import InvalidEndpointSlice, SliceEndpoints, parse_endpoint_slice
from nodeport_lb.agent.rules import RuleConfig, ServiceRules, compute_service_rules
from nodeport_lb.model import NodePortRange, Service, with_defaults
from nodeport_lb.store import Changes, ObjectKey
from nodeport_lb.validation import validate_service

log = logging.getLogger(__name__)

DRAIN_TAINT = "ToBeDeletedByClusterAutoscaler"


@dataclass
class ApplyResult:
    dirty: set[str] = field(default_factory=set)  # Service keys whose rules may have changed
    invalid: list[str] = field(default_factory=list)  # one message per rejected object
    # the kind of each rejected object: "Service", "EndpointSlice", "Endpoint"
    invalid_kinds: list[str] = field(default_factory=list)
    node_changed: bool = False


Port = tuple[str, int]  # (nft protocol, port): a nodePort, or ("tcp", hcnp)
_NEWEST = (1, "")  # objects without a creationTimestamp count as the youngest


def _age(manifest: Mapping[str, Any]) -> tuple[int, str]:
    """Sort key: older first. Parsed, so two spellings of one instant compare equal."""
    stamp = (manifest.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(stamp, str):
        return _NEWEST
    try:
        return (0, datetime.fromisoformat(stamp.replace("Z", "+00:00")).isoformat())
    except ValueError:
        return _NEWEST


class ClusterState:
    def __init__(self, config: RuleConfig, node_port_range: NodePortRange) -> None:
        self.config = config
        self.node_port_range = node_port_range
        self.services: dict[str, Service] = {}
        # a fingerprint of the last object seen, to skip unchanged ones
        self._raw_services: dict[str, bytes] = {}
        self.slices: dict[ObjectKey, SliceEndpoints] = {}
        self._slices_of_service: dict[str, set[ObjectKey]] = {}
        self.node: Mapping[str, Any] | None = None
        self.rules: dict[str, ServiceRules] = {}
        # every Service that wants a port; the oldest of them holds it
        self._claims: dict[Port, set[str]] = {}
        self._wanted: dict[str, set[Port]] = {}
        self._ages: dict[str, tuple[tuple[int, str], str]] = {}
        self.blocked: dict[str, frozenset[Port]] = {}  # Service -> ports it is refused

    # --- inputs --------------------------------------------------------------------------

    def apply(self, changes: Changes) -> ApplyResult:
        result = ApplyResult()
        for key in changes.deletes:
            self._set(key, None, result, "")
        for key, obj in changes.upserts.items():
            origin = changes.origins.get(key, "")
            try:
                self._set(key, obj, result, origin)
            except Exception as exc:  # one object must never stop the others
                self._reject(result, key.kind, origin, f"{key} set aside: {exc!r}")
                log.debug("object %s", key, exc_info=True)
        self._recompute(result.dirty)
        return result

    @staticmethod
    def _reject(result: ApplyResult, kind: str, origin: str, message: str) -> None:
        text = f"{origin}: {message}" if origin else message
        log.warning("%s", text)
        result.invalid.append(text)
        result.invalid_kinds.append(kind)

    def _set(
        self, key: ObjectKey, obj: Mapping[str, Any] | None, result: ApplyResult, origin: str
    ) -> None:
        """One object's new state; None when it was deleted."""
        if key.kind == "Service":
            self._set_service(key, obj, result, origin)
        elif key.kind == "EndpointSlice":
            self._set_slice(key, obj, result, origin)
        elif key.kind == "Node" and key.name == self.config.node_name:
            self.node = obj
            result.node_changed = True

    def _set_slice(
        self, key: ObjectKey, obj: Mapping[str, Any] | None, result: ApplyResult, origin: str
    ) -> None:
        try:
            parsed = None if obj is None else parse_endpoint_slice(obj)
        except InvalidEndpointSlice as exc:
            message = f"{key} ignored, keeping its last good state: {exc}"
            self._reject(result, "EndpointSlice", origin, message)
            return
        for error in parsed.set_aside if parsed else ():
            self._reject(result, "Endpoint", origin, f"{key}: endpoint left out: {error}")
        if self.slices.get(key) == parsed:
            return
        # The Service the slice belonged to loses it (gone, or moved: its label changed).
        old = self.slices.pop(key, None)
        if old:
            old_service = f"{old.namespace}/{old.service_name}"
            self._slices_of_service.get(old_service, set()).discard(key)
            result.dirty.add(old_service)
        if parsed is None:
            return
        service_key = f"{parsed.namespace}/{parsed.service_name}"
        self.slices[key] = parsed
        self._slices_of_service.setdefault(service_key, set()).add(key)
        result.dirty.add(service_key)

    def _set_service(
        self, key: ObjectKey, obj: Mapping[str, Any] | None, result: ApplyResult, origin: str
    ) -> None:
        service_key = f"{key.namespace}/{key.name}"
        if obj is None:
            self._raw_services.pop(service_key, None)
            if self.services.pop(service_key, None):
                result.dirty.add(service_key)
            return
        fingerprint = _fingerprint(obj)
        if self._raw_services.get(service_key) == fingerprint:
            return
        self._raw_services[service_key] = fingerprint
        defaulted = with_defaults(obj)
        errors = validate_service(defaulted, self.node_port_range)
        if errors:
            message = f"Service {service_key} ignored, keeping its last good state: " + "; ".join(
                str(e) for e in errors
            )
            self._reject(result, "Service", origin, message)
            return
        # only the typed fields: the agent reads nothing else of a Service, and the objects
        # of 10,000 Services kept as read were 30 MB
        self.services[service_key] = Service.from_manifest(
            defaulted, defaulted=True, keep_manifest=False
        )
        self._ages[service_key] = (_age(defaulted), service_key)
        result.dirty.add(service_key)

    # --- snapshot ------------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """The state, for a snapshot: copies of the tables whose values are never changed in
        place; what is derived from them (who claims which port, a Service's slices) is not
        kept but made again by ``restore``."""
        return {
            "services": dict(self.services),
            "fingerprints": dict(self._raw_services),
            "slices": dict(self.slices),
            "node": self.node,
            "rules": dict(self.rules),
            "ages": dict(self._ages),
            "blocked": dict(self.blocked),
        }

    def restore(self, exported: Mapping[str, Any]) -> None:
        """Start from what ``export`` gave (a state with nothing applied yet); its tables
        are taken over, not copied."""
        self.services = exported["services"]
        self._raw_services = exported["fingerprints"]
        self.slices = exported["slices"]
        self.node = exported["node"]
        self.rules = exported["rules"]
        self._ages = exported["ages"]
        self.blocked = exported["blocked"]
        self._slices_of_service = {}
        for slice_key, parsed in self.slices.items():
            service_key = f"{parsed.namespace}/{parsed.service_name}"
            self._slices_of_service.setdefault(service_key, set()).add(slice_key)
        self._wanted = {}
        self._claims = {}
        for key, service in self.services.items():
            ports = _ports_of(service)
            if ports:
                self._wanted[key] = ports
            for port in ports:
                self._claims.setdefault(port, set()).add(key)

    # --- outputs -------------------------------------------------------------------------

    def _recompute(self, dirty: set[str]) -> None:
        """Rules for the dirty Services, and for every Service whose claim on a port a dirty
        one changed (it may win or lose that port now)."""
        affected = set(dirty)
        for key in dirty:
            service = self.services.get(key)
            old = self._wanted.pop(key, set())
            new = _ports_of(service) if service else set()
            if new:
                self._wanted[key] = new
            for port in old - new:
                claimants = self._claims.get(port, set())
                claimants.discard(key)
                affected |= claimants
                if not claimants:
                    self._claims.pop(port, None)
            for port in new:
                claimants = self._claims.setdefault(port, set())
                claimants.add(key)
                if len(claimants) > 1:
                    affected |= claimants  # the age may have changed too
        for key in sorted(affected):
            service = self.services.get(key)
            if service is None:
                self.rules.pop(key, None)
                self.blocked.pop(key, None)
                self._ages.pop(key, None)
                continue
            blocked = frozenset(p for p in self._wanted.get(key, ()) if self._owner(p) != key)
            if blocked != self.blocked.get(key, frozenset()):
                for protocol, number in sorted(blocked - self.blocked.get(key, frozenset())):
                    log.warning(
                        "Service %s: port %s/%d is held by the older Service %s; "
                        "this port is set aside",
                        key,
                        protocol,
                        number,
                        self._owner((protocol, number)),
                    )
            if blocked:
                self.blocked[key] = blocked
            else:
                self.blocked.pop(key, None)
            slices = [self.slices[k] for k in self._slices_of_service.get(key, ())]
            rules = compute_service_rules(service, slices, self.config, blocked)
            if ("tcp", rules.health_check_node_port) in blocked:
                rules = dataclasses.replace(rules, health_check_node_port=0)
            self.rules[key] = rules
        dirty |= affected

    def _owner(self, port: Port) -> str:
        return min(self._claims[port], key=lambda k: self._ages.get(k, (_NEWEST, k)))

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


def _fingerprint(obj: Mapping[str, Any]) -> bytes:
    """Tells one version of an object from another without keeping it: a digest of its repr,
    which spells out every key and value, in order (an object written again with its fields
    in another order counts as changed, which costs one computation, never a missed change)."""
    text = repr(obj).encode("utf-8", "backslashreplace")
    return hashlib.blake2b(text, digest_size=16).digest()


def _ports_of(service: Service) -> set[Port]:
    ports = {(p.protocol.lower(), p.node_port) for p in service.ports if p.node_port}
    if service.needs_health_check and service.health_check_node_port:
        ports.add(("tcp", service.health_check_node_port))
    return ports
