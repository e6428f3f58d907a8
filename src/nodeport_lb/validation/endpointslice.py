"""discovery.k8s.io/v1 EndpointSlice checks, the API server's rules for the fields a proxy reads.

Split in two: problems with the slice itself (its name, Service label, address type, ports), and
problems with single endpoints, so a reader can set one bad endpoint aside and keep the rest.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from nodeport_lb.validation.field import FieldError, Path
from nodeport_lb.validation.names import (
    is_dns1123_label,
    is_dns1123_subdomain,
    is_valid_label_value,
    is_valid_port_num,
)

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
ADDRESS_TYPES = ["IPv4", "IPv6", "FQDN"]
PROTOCOLS = ["TCP", "UDP", "SCTP"]
MAX_ENDPOINTS = 1000
MAX_PORTS = 100
MAX_ADDRESSES = 100


@dataclass
class EndpointSliceProblems:
    slice_errors: list[FieldError] = field(default_factory=list)
    # index in .endpoints -> what is wrong with that endpoint
    endpoint_errors: dict[int, list[FieldError]] = field(default_factory=dict)

    def all(self) -> list[FieldError]:
        return [*self.slice_errors, *(e for errs in self.endpoint_errors.values() for e in errs)]


# An IPv4 address exactly as ipaddress prints it: four decimal octets, no leading zero.
_CANONICAL_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}"
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
)


def _is_address(value: Any, address_type: str) -> bool:
    if not isinstance(value, str):
        return False
    if address_type == "IPv4" and _CANONICAL_IPV4.fullmatch(value):
        return True  # what the check below says of it, at a tenth of the cost
    try:
        parsed = ipaddress.ip_address(value)
    except ValueError:
        return False
    # the canonical spelling only: what reaches nft or a config is exactly what was checked
    return str(parsed) == value and parsed.version == (4 if address_type == "IPv4" else 6)


def validate_endpoint_slice(obj: Any) -> EndpointSliceProblems:
    problems = EndpointSliceProblems()
    errors = problems.slice_errors
    if not isinstance(obj, dict):
        errors.append(Path("").invalid(obj, "must be an object"))
        return problems
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    name, namespace = meta.get("name"), meta.get("namespace") or "default"
    if not isinstance(name, str) or not name:
        errors.append(Path("metadata.name").required("name or generateName is required"))
    else:
        errors += [Path("metadata.name").invalid(name, m) for m in is_dns1123_subdomain(name)]
    if not isinstance(namespace, str):
        errors.append(Path("metadata.namespace").invalid(namespace, "must be a string"))
    else:
        errors += [
            Path("metadata.namespace").invalid(namespace, m) for m in is_dns1123_label(namespace)
        ]
    labels = meta.get("labels")
    service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
    if service is not None:
        label_path = Path("metadata.labels").key(SERVICE_NAME_LABEL)
        if not isinstance(service, str):
            errors.append(label_path.invalid(service, "must be a string"))
        else:
            errors += [label_path.invalid(service, m) for m in is_valid_label_value(service)]
    address_type = obj.get("addressType", "IPv4")
    if address_type not in ADDRESS_TYPES:
        errors.append(Path("addressType").not_supported(address_type, ADDRESS_TYPES))
    errors += _validate_ports(obj.get("ports"))
    endpoints = obj.get("endpoints") or []
    if not isinstance(endpoints, list):
        errors.append(Path("endpoints").invalid("", "must be a list"))
        return problems
    if len(endpoints) > MAX_ENDPOINTS:
        errors.append(Path("endpoints").invalid(len(endpoints), f"at most {MAX_ENDPOINTS}"))
        return problems
    for i, endpoint in enumerate(endpoints):
        found = _validate_endpoint(endpoint, Path("endpoints").index(i), address_type)
        if found:
            problems.endpoint_errors[i] = found
    return problems


def _validate_ports(ports: Any) -> list[FieldError]:
    path = Path("ports")
    if ports is None:
        return []
    if not isinstance(ports, list):
        return [path.invalid("", "must be a list")]
    if len(ports) > MAX_PORTS:
        return [path.invalid(len(ports), f"at most {MAX_PORTS}")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, port in enumerate(ports):
        port_path = path.index(i)
        if not isinstance(port, dict):
            errors.append(port_path.invalid("", "must be an object"))
            continue
        name = port.get("name") or ""
        if not isinstance(name, str):
            errors.append(port_path.child("name").invalid(name, "must be a string"))
        else:
            if name:
                errors += [port_path.child("name").invalid(name, m) for m in is_dns1123_label(name)]
            if name in seen:
                errors.append(port_path.child("name").duplicate(name))
            seen.add(name)
        number = port.get("port")
        if number is not None:
            if not isinstance(number, int) or isinstance(number, bool):
                errors.append(port_path.child("port").invalid(number, "must be an integer"))
            else:
                number_path = port_path.child("port")
                errors += [number_path.invalid(number, m) for m in is_valid_port_num(number)]
        protocol = port.get("protocol", "TCP")
        if protocol not in PROTOCOLS:
            errors.append(port_path.child("protocol").not_supported(protocol, PROTOCOLS))
    return errors


def _validate_endpoint(endpoint: Any, path: Path, address_type: Any) -> list[FieldError]:
    if not isinstance(endpoint, dict):
        return [path.invalid("", "must be an object")]
    errors: list[FieldError] = []
    addresses = endpoint.get("addresses")
    if not isinstance(addresses, list) or not addresses:
        errors.append(path.child("addresses").required("must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        errors.append(path.child("addresses").invalid(len(addresses), f"at most {MAX_ADDRESSES}"))
    elif address_type in ("IPv4", "IPv6"):
        for j, address in enumerate(addresses):
            if not _is_address(address, address_type):
                errors.append(
                    path.child("addresses")
                    .index(j)
                    .invalid(address, f"must be a valid {address_type} address")
                )
    node_name = endpoint.get("nodeName")
    if node_name is not None:
        if not isinstance(node_name, str):
            errors.append(path.child("nodeName").invalid(node_name, "must be a string"))
        else:
            node_path = path.child("nodeName")
            errors += [node_path.invalid(node_name, m) for m in is_dns1123_subdomain(node_name)]
    conditions = endpoint.get("conditions")
    if conditions is not None and not isinstance(conditions, dict):
        errors.append(path.child("conditions").invalid("", "must be an object"))
    elif conditions:
        for condition in ("ready", "serving", "terminating"):
            value = conditions.get(condition)
            if value is not None and not isinstance(value, bool):
                errors.append(
                    path.child("conditions", condition).invalid(value, "must be a boolean")
                )
    return errors
