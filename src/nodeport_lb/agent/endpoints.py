"""EndpointSlices (discovery.k8s.io/v1) read the way kube-proxy reads them.

Conditions follow the API's defaults: ``ready`` absent means ready, ``serving`` absent means
the value of ready, ``terminating`` absent means false. Which endpoints a node may use follows
KEP-1669, as kube-proxy does: ready ones; when none is ready, serving-and-terminating ones; never
terminating ones that stopped serving.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from nodeport_lb.validation import FieldError, validate_endpoint_slice
from nodeport_lb.validation.endpointslice import SERVICE_NAME_LABEL

# Set by the endpointslice controller to when the pod or Service change that rewrote the
# slice happened: where network programming latency starts.
LAST_CHANGE_TRIGGER_TIME = "endpoints.kubernetes.io/last-change-trigger-time"


class PickledAsCall:
    """Base of a dataclass pickled (the agent's snapshot) as a call of itself with its fields
    in order: slots' own state protocol was a third of loading a snapshot of 10,000 Services."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:
        cls = type(self)
        return cls, (_FIELD_VALUES.get(cls) or _field_values(cls))(self)


_FIELD_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _field_values(cls: Any) -> Callable[[Any], tuple[Any, ...]]:
    """What gives a ``cls``'s field values as a tuple, in order; made once per class."""
    names = [f.name for f in fields(cls)]
    get = operator.attrgetter(*names)
    # attrgetter of one name gives the value, not a 1-tuple
    values = get if len(names) > 1 else lambda obj: (get(obj),)
    _FIELD_VALUES[cls] = values
    return values


class InvalidEndpointSlice(ValueError):
    """The slice itself is unusable (its name, Service label, address type or ports)."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)  # slots: 20,000 of them at 10,000 Services
class Endpoint(PickledAsCall):
    address: str
    port: int
    node_name: str
    ready: bool
    serving: bool
    terminating: bool

    @property
    def draining(self) -> bool:
        """Still serving while terminating: used only when nothing is ready."""
        return self.serving and self.terminating and not self.ready


@dataclass(frozen=True, slots=True)
class SliceEndpoints(PickledAsCall):
    """One EndpointSlice: its Service and its endpoints per (port name, protocol)."""

    namespace: str
    service_name: str
    address_type: str
    by_port: Mapping[tuple[str, str], tuple[Endpoint, ...]]
    # endpoints left out because they do not validate (the others are used)
    set_aside: tuple[FieldError, ...] = field(default=(), compare=False)


def parse_endpoint_slice(obj: Mapping[str, Any]) -> SliceEndpoints | None:
    """The usable content of an EndpointSlice, or None when it belongs to no Service.

    Every field used is validated first: an endpoint that does not validate is left out alone
    (``set_aside``); a slice whose own fields do not raises ``InvalidEndpointSlice``."""
    problems = validate_endpoint_slice(obj)
    if problems.slice_errors:
        raise InvalidEndpointSlice(problems.slice_errors)
    meta = obj.get("metadata") or {}
    service_name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    if not service_name:
        return None
    address_type = obj.get("addressType") or "IPv4"
    raw_endpoints = [
        e for i, e in enumerate(obj.get("endpoints") or []) if i not in problems.endpoint_errors
    ]
    by_port: dict[tuple[str, str], tuple[Endpoint, ...]] = {}
    for port in obj.get("ports") or []:
        if not isinstance(port.get("port"), int):
            continue  # no port: "all ports", which a NodePort rule cannot use
        key = (port.get("name") or "", port.get("protocol") or "TCP")
        by_port[key] = tuple(_endpoints(raw_endpoints, port["port"]))
    return SliceEndpoints(
        namespace=meta.get("namespace") or "default",
        service_name=service_name,
        address_type=address_type,
        by_port=by_port,
        set_aside=tuple(e for errs in problems.endpoint_errors.values() for e in errs),
    )


def _endpoints(raw_endpoints: Iterable[Any], port: int) -> Iterable[Endpoint]:
    for raw in raw_endpoints:
        if not isinstance(raw, Mapping):
            continue
        conditions = raw.get("conditions") or {}
        ready = conditions.get("ready") is not False
        serving = conditions["serving"] if conditions.get("serving") is not None else ready
        terminating = bool(conditions.get("terminating"))
        for address in raw.get("addresses") or []:
            yield Endpoint(
                address=str(address),
                port=port,
                node_name=raw.get("nodeName") or "",
                ready=ready,
                serving=bool(serving),
                terminating=terminating,
            )


def endpoints_for_port(
    slices: Iterable[SliceEndpoints], port_name: str, protocol: str
) -> list[Endpoint]:
    """All endpoints of one Service port across its slices, deduplicated, in a stable order."""
    seen: dict[tuple[str, int], Endpoint] = {}
    for one in slices:
        if one.address_type != "IPv4":
            continue  # the dataplane is IPv4 for now
        for endpoint in one.by_port.get((port_name, protocol), ()):
            seen.setdefault((endpoint.address, endpoint.port), endpoint)
    return sorted(seen.values(), key=lambda e: (e.address, e.port))


def usable_endpoints(endpoints: Iterable[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when none is ready, the serving-and-terminating ones (KEP-1669)."""
    candidates = list(endpoints)
    ready = [e for e in candidates if e.ready]
    return ready or [e for e in candidates if e.draining]


def local_ready_count(endpoints: Iterable[Endpoint], node_name: str) -> int:
    """What the hcnp reports: this node's ready endpoints, deduplicated by IP across ports."""
    return len({e.address for e in endpoints if e.ready and e.node_name == node_name})


def change_trigger_time(obj: Mapping[str, Any]) -> float | None:
    """Unix time of the change behind this EndpointSlice, or None when it does not say
    (or says something that is not an RFC 3339 time with a zone)."""
    if obj.get("kind") != "EndpointSlice":
        return None
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if not isinstance(annotations, Mapping):
        return None
    value = annotations.get(LAST_CHANGE_TRIGGER_TIME)
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo is not None else None
