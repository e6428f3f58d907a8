"""Validation of a v1 Service, mirroring the API server (pkg/apis/core/validation/validation.go
``ValidateService`` plus the node-port allocator's range check).

It runs on the *defaulted* manifest (``model.apply_defaults``), as the API server validates after
defaulting, and it never trusts the shape of its input: a wrong type is a field error, not an
exception.
"""

from __future__ import annotations

from typing import Any

from nodeport_lb.model import (
    MAX_CLIENT_IP_AFFINITY_SECONDS,
    NodePortRange,
    is_externally_accessible,
    needs_health_check,
)
from nodeport_lb.validation.field import FieldError, Path
from nodeport_lb.validation.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_qualified_name,
    is_valid_cidr,
    is_valid_ip,
    is_valid_label_value,
    is_valid_port_name,
    is_valid_port_num,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
SESSION_AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
KUBELET_PORT = 10250
ANNOTATIONS_MAX_BYTES = 256 * 1024

_META = Path("metadata")
_SPEC = Path("spec")


def validate_service(manifest: Any, node_port_range: NodePortRange) -> list[FieldError]:
    if not isinstance(manifest, dict):
        return [Path("").invalid(manifest, "must be an object")]
    errors: list[FieldError] = []
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        errors.append(_META.required("name or generateName is required"))
        meta = {}
    errors += _validate_metadata(meta)
    spec = manifest.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return [*errors, _SPEC.invalid(spec, "must be an object")]
    errors += _validate_spec(spec, node_port_range)
    return errors


def _validate_metadata(meta: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    name = meta.get("name")
    if name in (None, ""):
        errors.append(_META.child("name").required("name or generateName is required"))
    elif not isinstance(name, str):
        errors.append(_META.child("name").invalid(name, "must be a string"))
    else:
        errors += [_META.child("name").invalid(name, m) for m in is_dns1035_label(name)]
    namespace = meta.get("namespace")
    if namespace not in (None, ""):
        if not isinstance(namespace, str):
            errors.append(_META.child("namespace").invalid(namespace, "must be a string"))
        else:
            errors += [
                _META.child("namespace").invalid(namespace, m) for m in is_dns1123_label(namespace)
            ]
    errors += validate_labels(meta.get("labels"), _META.child("labels"))
    errors += _validate_annotations(meta.get("annotations"), _META.child("annotations"))
    return errors


def validate_labels(labels: Any, path: Path) -> list[FieldError]:
    """ValidateLabels: keys are qualified names, values label values; errors on the map's path."""
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [path.invalid(labels, "must be a map of string keys to string values")]
    errors: list[FieldError] = []
    for key, value in labels.items():
        key_text = str(key)
        errors += [path.invalid(key_text, m) for m in is_qualified_name(key_text)]
        if not isinstance(value, str):
            errors.append(path.invalid(value, "label values must be strings"))
            continue
        errors += [path.invalid(value, m) for m in is_valid_label_value(value)]
    return errors


def _validate_annotations(annotations: Any, path: Path) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [path.invalid(annotations, "must be a map of string keys to string values")]
    errors: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        key_text = str(key)
        errors += [path.invalid(key_text, m) for m in is_qualified_name(key_text.lower())]
        if not isinstance(value, str):
            errors.append(path.key(key_text).invalid(value, "annotation values must be strings"))
            continue
        total += len(key_text) + len(value)
    if total > ANNOTATIONS_MAX_BYTES:
        errors.append(path.too_long(ANNOTATIONS_MAX_BYTES))
    return errors


def _validate_spec(spec: dict[str, Any], node_port_range: NodePortRange) -> list[FieldError]:
    errors: list[FieldError] = []
    svc_type = spec.get("type")
    if svc_type not in SERVICE_TYPES:
        errors.append(_SPEC.child("type").not_supported(svc_type, SERVICE_TYPES))

    headless = spec.get("clusterIP") == "None"
    errors += _validate_cluster_ip(spec, svc_type, headless)

    ports = spec.get("ports")
    if ports is None:
        ports = []
    if not isinstance(ports, list):
        errors.append(_SPEC.child("ports").invalid(ports, "must be a list"))
        ports = []
    elif not ports and not headless and svc_type != "ExternalName":
        errors.append(_SPEC.child("ports").required())
    errors += _validate_ports(ports, svc_type, node_port_range)

    errors += validate_labels(spec.get("selector"), _SPEC.child("selector"))
    errors += _validate_session_affinity(spec)
    errors += _validate_traffic_policies(spec, node_port_range)
    errors += _validate_load_balancer_fields(spec, svc_type)
    return errors


def _validate_cluster_ip(spec: dict[str, Any], svc_type: Any, headless: bool) -> list[FieldError]:
    cluster_ip = spec.get("clusterIP")
    if cluster_ip in (None, "", "None"):
        if headless and svc_type in ("LoadBalancer", "NodePort"):
            detail = f"may not be set to 'None' for {svc_type} services"
            return [_SPEC.child("clusterIPs").index(0).invalid("None", detail)]
        return []
    if not isinstance(cluster_ip, str):
        return [_SPEC.child("clusterIP").invalid(cluster_ip, "must be a string")]
    return [
        _SPEC.child("clusterIPs").index(0).invalid(cluster_ip, m) for m in is_valid_ip(cluster_ip)
    ]


def _int_field(value: Any, path: Path, errors: list[FieldError]) -> int | None:
    """An integer field as JSON decoding would accept it; records an error otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(path.invalid(value, "must be an integer"))
        return None
    return value


def _validate_ports(
    ports: list[Any], svc_type: Any, node_port_range: NodePortRange
) -> list[FieldError]:
    errors: list[FieldError] = []
    ports_path = _SPEC.child("ports")
    require_name = len(ports) > 1
    names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    seen_node_ports: set[tuple[Any, int]] = set()
    for i, port in enumerate(ports):
        path = ports_path.index(i)
        if not isinstance(port, dict):
            errors.append(path.invalid(port, "must be an object"))
            continue
        name = port.get("name") or ""
        if not isinstance(name, str):
            errors.append(path.child("name").invalid(name, "must be a string"))
        elif require_name and not name:
            errors.append(path.child("name").required())
        elif name:
            errors += [path.child("name").invalid(name, m) for m in is_dns1123_label(name)]
            if name in names:
                errors.append(path.child("name").duplicate(name))
            names.add(name)

        number = _int_field(port.get("port"), path.child("port"), errors)
        if number is not None:
            errors += [path.child("port").invalid(number, m) for m in is_valid_port_num(number)]

        protocol = port.get("protocol")
        protocol_key = protocol if isinstance(protocol, str) else repr(protocol)  # set member
        if not protocol:
            errors.append(path.child("protocol").required())
        elif protocol not in PROTOCOLS:
            errors.append(path.child("protocol").not_supported(protocol, PROTOCOLS))

        errors += _validate_target_port(port.get("targetPort"), path.child("targetPort"))

        if svc_type == "LoadBalancer" and number == KUBELET_PORT:
            detail = f"may not expose port {KUBELET_PORT} externally since it is used by kubelet"
            errors.append(path.invalid(number, detail))

        if (protocol_key, number) in seen_ports:
            errors.append(path.duplicate({"protocol": protocol, "port": number}))
        seen_ports.add((protocol_key, number))

        node_port = port.get("nodePort")
        if node_port in (None, 0):
            continue
        node_port = _int_field(node_port, path.child("nodePort"), errors)
        if node_port is None:
            continue
        if svc_type == "ClusterIP":
            errors.append(
                path.child("nodePort").forbidden("may not be used when `type` is 'ClusterIP'")
            )
            continue
        if (protocol_key, node_port) in seen_node_ports:
            errors.append(path.child("nodePort").duplicate(node_port))
        seen_node_ports.add((protocol_key, node_port))
        if node_port not in node_port_range:
            errors.append(path.child("nodePort").invalid(node_port, node_port_range.out_of_range()))
    return errors


def _validate_target_port(target: Any, path: Path) -> list[FieldError]:
    if isinstance(target, bool) or target is None:
        return [path.invalid(target, "must be an integer or a port name")]
    if isinstance(target, int):
        return [path.invalid(target, m) for m in is_valid_port_num(target)]
    if isinstance(target, str):
        if not target:
            return [path.required()]
        return [path.invalid(target, m) for m in is_valid_port_name(target)]
    return [path.invalid(target, "must be an integer or a port name")]


def _validate_session_affinity(spec: dict[str, Any]) -> list[FieldError]:
    affinity = spec.get("sessionAffinity")
    config_path = _SPEC.child("sessionAffinityConfig")
    config = spec.get("sessionAffinityConfig")
    if affinity not in SESSION_AFFINITIES:
        return [_SPEC.child("sessionAffinity").not_supported(affinity, SESSION_AFFINITIES)]
    if affinity == "None":
        if config is not None:
            return [config_path.forbidden("must not be set when session affinity is None")]
        return []
    when = "when session affinity type is ClientIP"
    if not isinstance(config, dict):
        return [config_path.required(when)]
    client_ip = config.get("clientIP")
    if not isinstance(client_ip, dict):
        return [config_path.child("clientIP").required(when)]
    timeout_path = config_path.child("clientIP", "timeoutSeconds")
    timeout = client_ip.get("timeoutSeconds")
    if timeout is None:
        return [timeout_path.required(when)]
    errors: list[FieldError] = []
    timeout = _int_field(timeout, timeout_path, errors)
    if timeout is not None and not 0 < timeout <= MAX_CLIENT_IP_AFFINITY_SECONDS:
        detail = f"must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"
        errors.append(timeout_path.invalid(timeout, detail))
    return errors


def _validate_traffic_policies(
    spec: dict[str, Any], node_port_range: NodePortRange
) -> list[FieldError]:
    errors: list[FieldError] = []
    etp_path = _SPEC.child("externalTrafficPolicy")
    etp = spec.get("externalTrafficPolicy")
    if not is_externally_accessible(spec):
        if etp:
            errors.append(
                etp_path.invalid(etp, "may only be set for externally-accessible services")
            )
    elif not etp:
        errors.append(etp_path.required())
    elif etp not in TRAFFIC_POLICIES:
        errors.append(etp_path.not_supported(etp, TRAFFIC_POLICIES))

    hcnp_path = _SPEC.child("healthCheckNodePort")
    hcnp = spec.get("healthCheckNodePort")
    if hcnp not in (None, 0):
        hcnp = _int_field(hcnp, hcnp_path, errors)
        if hcnp is not None:
            if not needs_health_check(spec):
                errors.append(
                    hcnp_path.invalid(
                        hcnp,
                        "may only be set when `type` is 'LoadBalancer' and "
                        "`externalTrafficPolicy` is 'Local'",
                    )
                )
            elif messages := is_valid_port_num(hcnp):
                errors += [hcnp_path.invalid(hcnp, m) for m in messages]
            elif hcnp not in node_port_range:
                errors.append(hcnp_path.invalid(hcnp, node_port_range.out_of_range()))
            elif hcnp in _node_ports(spec):
                # The API server allocates the hcnp from the same pool as the nodePorts.
                errors.append(hcnp_path.invalid(hcnp, "provided port is already allocated"))

    itp = spec.get("internalTrafficPolicy")
    if itp is not None and itp not in TRAFFIC_POLICIES:
        errors.append(_SPEC.child("internalTrafficPolicy").not_supported(itp, TRAFFIC_POLICIES))
    return errors


def _node_ports(spec: dict[str, Any]) -> set[int]:
    ports = spec.get("ports") if isinstance(spec.get("ports"), list) else []
    return {
        p["nodePort"] for p in ports if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
    }


def _validate_load_balancer_fields(spec: dict[str, Any], svc_type: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    allocate = spec.get("allocateLoadBalancerNodePorts")
    if allocate is not None:
        if svc_type != "LoadBalancer":
            errors.append(
                _SPEC.child("allocateLoadBalancerNodePorts").forbidden(
                    "may only be used when `type` is 'LoadBalancer'"
                )
            )
        elif not isinstance(allocate, bool):
            errors.append(
                _SPEC.child("allocateLoadBalancerNodePorts").invalid(allocate, "must be a boolean")
            )

    ranges = spec.get("loadBalancerSourceRanges")
    if ranges:
        # The API server names this path with a capital L (a historical quirk kept verbatim).
        path = _SPEC.child("LoadBalancerSourceRanges")
        if svc_type != "LoadBalancer":
            errors.append(path.forbidden("may only be used when `type` is 'LoadBalancer'"))
        if not isinstance(ranges, list):
            return [*errors, path.invalid(ranges, "must be a list of CIDRs")]
        for i, value in enumerate(ranges):
            if not isinstance(value, str):
                errors.append(path.index(i).invalid(value, "must be a string"))
                continue
            value = value.strip()  # space padding is tolerated upstream
            errors += [path.index(i).invalid(value, m) for m in is_valid_cidr(value)]
    return errors
