"""A v1 Service checked the way the API server checks a create, message for message.

The API server's create path, in its order (pkg/registry/core/service/storage):

1. defaulting (``model.apply_defaults``, pkg/apis/core/v1/defaults.go), done by the caller;
2. ``metadata.generateName`` turned into a name, ``clusterIP`` copied into ``clusterIPs``;
3. the IP-family step of allocation (``initIPFamilyFields``): ipFamilyPolicy defaulted, the
   cluster-IP fields pre-validated, the SingleStack checks, ipFamilies checked against the
   families the cluster serves;
4. node-port allocation: the first explicit nodePort or healthCheckNodePort the allocator
   refuses (out of range, already taken);
5. ``ValidateService`` (pkg/apis/core/validation/validation.go).

A step that fails ends the request, so the user sees only its errors; ``validate_service``
returns exactly those. ``validate_service_object`` is step 5 alone. Nothing here trusts the
shape of its input: a wrong type is a field error, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nodeport_lb.model import (
    MAX_CLIENT_IP_AFFINITY_SECONDS,
    NodePortRange,
    is_externally_accessible,
    needs_health_check,
)
from nodeport_lb.validation.field import (
    FieldError,
    Path,
    go_service_port_key,
    go_strings,
)
from nodeport_lb.validation.ip import (
    IPV4,
    IPV6,
    ip_family,
    is_valid_cidr,
    is_valid_ip,
    validate_non_special_ip,
)
from nodeport_lb.validation.names import (
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    is_valid_port_name,
    is_valid_port_num,
)

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
PROTOCOLS = ["SCTP", "TCP", "UDP"]
SESSION_AFFINITIES = ["ClientIP", "None"]
TRAFFIC_POLICIES = ["Cluster", "Local"]
IP_FAMILIES = [IPV4, IPV6]
IP_FAMILY_POLICIES = ["PreferDualStack", "RequireDualStack", "SingleStack"]
# Kubernetes 1.33 with default feature gates: PreferSameZone / PreferSameNode are alpha there.
TRAFFIC_DISTRIBUTIONS = ["PreferClose"]
DEFAULT_SERVICE_IP_FAMILIES = (IPV4,)
ANNOTATIONS_MAX_BYTES = 256 * 1024
SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
TOPOLOGY_MODE_ANNOTATION = "service.kubernetes.io/topology-mode"
TOPOLOGY_HINTS_ANNOTATION = "service.kubernetes.io/topology-aware-hints"
# The name generator's shape (SimpleNameGenerator): at most 58 characters of the prefix and 5
# random ones. Any 5 characters of its alphabet give the same verdict; these stand for them.
GENERATED_PREFIX_MAX = 58
GENERATED_SUFFIX = "xxxxx"

_META = Path("metadata")
_SPEC = Path("spec")


def validate_service(
    manifest: Any,
    node_port_range: NodePortRange,
    ip_families: Sequence[str] | None = None,
) -> list[FieldError]:
    """The errors the API server answers to a create of this defaulted Service.

    ``ip_families`` are the families the cluster serves (its --service-cluster-ip-range), in
    order, the first being the default (``DEFAULT_SERVICE_IP_FAMILIES`` unless the cluster is
    configured otherwise); ``None`` skips the checks against them, for Services read back from
    a cluster, which already passed them.
    """
    if not isinstance(manifest, dict):
        return [Path("").invalid(manifest, "must be an object")]
    svc = _prepare_for_create(manifest)
    spec = svc.get("spec")
    if isinstance(spec, dict):
        if ip_families is not None and (errors := _init_ip_family_fields(spec, list(ip_families))):
            return _distinct(errors)
        # Imported here: allocation imports this package for its error type.
        from nodeport_lb.allocation import explicit_port_refusal

        if refusal := explicit_port_refusal(svc, node_port_range):
            return [refusal]
    return _distinct(validate_service_object(svc, hcnp_allocated=True))


def _prepare_for_create(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the registry does before allocating: a generated name, clusterIPs from clusterIP.

    Only the object, its metadata and its spec are copied: these steps and the IP-family step
    set fields of those two and nothing deeper, and validation itself changes nothing."""
    svc = dict(manifest)
    meta = svc.get("metadata")
    if isinstance(meta, dict):
        meta = svc["metadata"] = dict(meta)
        prefix = meta.get("generateName")
        if isinstance(prefix, str) and prefix and not meta.get("name"):
            meta["name"] = prefix[:GENERATED_PREFIX_MAX] + GENERATED_SUFFIX
    spec = svc.get("spec")
    if isinstance(spec, dict):
        spec = svc["spec"] = dict(spec)
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
    return svc


def _distinct(errors: list[FieldError]) -> list[FieldError]:
    """The API server's message lists each distinct error once (ErrorList.ToAggregate)."""
    seen: set[str] = set()
    unique = []
    for error in errors:
        if str(error) not in seen:
            seen.add(str(error))
            unique.append(error)
    return unique


def validate_service_object(svc: Any, hcnp_allocated: bool = False) -> list[FieldError]:
    """ValidateService: the checks of validation.go on an object as it reaches validation.

    ``hcnp_allocated``: the healthCheckNodePort is allocated before validation on a create, so
    a missing one is not an error there.
    """
    if not isinstance(svc, dict):
        return [Path("").invalid(svc, "must be an object")]
    meta = svc.get("metadata")
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return [_META.invalid(meta, "must be an object")]
    errors = _validate_metadata(meta)
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = {}
    errors += _validate_topology_annotations(annotations)
    spec = svc.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        return [*errors, _SPEC.invalid(spec, "must be an object")]
    return errors + _validate_spec(spec, annotations, hcnp_allocated)


# --- metadata ------------------------------------------------------------------------------


def _validate_metadata(meta: dict[str, Any]) -> list[FieldError]:
    """ValidateObjectMeta with the Service name rules (DNS-1035 labels)."""
    errors: list[FieldError] = []
    generate_name = meta.get("generateName")
    if generate_name not in (None, ""):
        path = _META.child("generateName")
        if not isinstance(generate_name, str):
            errors.append(path.invalid(generate_name, "must be a string"))
        else:
            # A prefix may end in '-': the generated suffix follows it.
            masked = generate_name[:-1] + "a" if generate_name.endswith("-") else generate_name
            errors += [path.invalid(generate_name, m) for m in is_dns1035_label(masked)]
    name = meta.get("name")
    if name in (None, ""):
        errors.append(_META.child("name").required("name or generateName is required"))
    elif not isinstance(name, str):
        errors.append(_META.child("name").invalid(name, "must be a string"))
    else:
        errors += [_META.child("name").invalid(name, m) for m in is_dns1035_label(name)]
    namespace = meta.get("namespace")
    if namespace in (None, ""):
        errors.append(_META.child("namespace").required())
    elif not isinstance(namespace, str):
        errors.append(_META.child("namespace").invalid(namespace, "must be a string"))
    else:
        errors += [
            _META.child("namespace").invalid(namespace, m) for m in is_dns1123_label(namespace)
        ]
    errors += validate_labels(meta.get("labels"), _META.child("labels"))
    errors += _validate_annotations(meta.get("annotations"), _META.child("annotations"))
    return errors


def _string_map(value: Any, path: Path) -> tuple[dict[Any, Any], list[FieldError]]:
    """Labels and annotations are a map[string]string: null is the empty map, anything else
    that is not a map one error (and nothing to check inside)."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, [path.invalid(value, "must be a map of string keys to string values")]
    return value, []


def validate_labels(labels: Any, path: Path) -> list[FieldError]:
    """ValidateLabels: keys are qualified names, values label values; errors on the map's path."""
    labels, errors = _string_map(labels, path)
    for key, value in labels.items():
        key_text = str(key)
        errors += [path.invalid(key_text, m) for m in is_qualified_name(key_text)]
        if not isinstance(value, str):
            errors.append(path.invalid(value, "label values must be strings"))
            continue
        errors += [path.invalid(value, m) for m in is_valid_label_value(value)]
    return errors


def _validate_annotations(annotations: Any, path: Path) -> list[FieldError]:
    annotations, errors = _string_map(annotations, path)
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


def _validate_topology_annotations(annotations: dict[str, Any]) -> list[FieldError]:
    if TOPOLOGY_MODE_ANNOTATION not in annotations or TOPOLOGY_HINTS_ANNOTATION not in annotations:
        return []
    mode = annotations[TOPOLOGY_MODE_ANNOTATION]
    if mode == annotations[TOPOLOGY_HINTS_ANNOTATION]:
        return []
    detail = f"must match annotations[{TOPOLOGY_HINTS_ANNOTATION}] when both are specified"
    return [_META.child("annotations").key(TOPOLOGY_MODE_ANNOTATION).invalid(mode, detail)]


# --- spec ----------------------------------------------------------------------------------


def _string_list(spec: dict[str, Any], name: str, errors: list[FieldError]) -> list[Any]:
    value = spec.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(_SPEC.child(name).invalid(value, "must be a list of strings"))
        return []
    return value


def is_headless(spec: dict[str, Any]) -> bool:
    ips = spec.get("clusterIPs")
    return isinstance(ips, list) and len(ips) == 1 and ips[0] == "None"


def _validate_spec(
    spec: dict[str, Any], annotations: dict[str, Any], hcnp_allocated: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    svc_type = spec.get("type")
    headless = is_headless(spec)

    ports = spec.get("ports")
    if ports is None:
        ports = []
    if not isinstance(ports, list):
        errors.append(_SPEC.child("ports").invalid(ports, "must be a list"))
        ports = []
    elif not ports and not headless and svc_type != "ExternalName":
        errors.append(_SPEC.child("ports").required())

    if svc_type in ("LoadBalancer", "NodePort") and headless:
        detail = f"may not be set to 'None' for {svc_type} services"
        errors.append(_SPEC.child("clusterIPs").index(0).invalid("None", detail))
    elif svc_type == "ExternalName":
        errors += _validate_external_name(spec)

    errors += _validate_ports(ports)
    errors += validate_labels(spec.get("selector"), _SPEC.child("selector"))
    errors += _validate_session_affinity(spec)
    errors += validate_cluster_ip_fields(spec)
    errors += _validate_external_ips(spec)

    if svc_type in (None, ""):
        errors.append(_SPEC.child("type").required())
    elif svc_type not in SERVICE_TYPES:
        errors.append(_SPEC.child("type").not_supported(svc_type, SERVICE_TYPES))

    errors += _validate_node_ports(ports, svc_type)
    errors += _validate_duplicate_ports(ports)
    errors += _validate_source_ranges(spec, annotations, svc_type)

    allocate = spec.get("allocateLoadBalancerNodePorts")
    allocate_path = _SPEC.child("allocateLoadBalancerNodePorts")
    if allocate is not None and svc_type != "LoadBalancer":
        errors.append(allocate_path.forbidden("may only be used when `type` is 'LoadBalancer'"))
    elif allocate is not None and not isinstance(allocate, bool):
        errors.append(allocate_path.invalid(allocate, "must be a boolean"))
    if svc_type == "LoadBalancer" and allocate is None:
        # The API server names this path without "spec." (a quirk kept verbatim).
        errors.append(Path("allocateLoadBalancerNodePorts").required())

    errors += _validate_load_balancer_class(spec, svc_type)
    errors += _validate_external_traffic_policy(spec, hcnp_allocated)
    errors += _validate_internal_traffic_policy(spec, svc_type)
    errors += _validate_traffic_distribution(spec)
    return errors


def _validate_external_name(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    detail = "may not be set for ExternalName services"
    if spec.get("clusterIPs"):
        errors.append(_SPEC.child("clusterIPs").forbidden(detail))
    if spec.get("ipFamilies"):
        errors.append(_SPEC.child("ipFamilies").forbidden(detail))
    if spec.get("ipFamilyPolicy") is not None:
        errors.append(_SPEC.child("ipFamilyPolicy").forbidden(detail))
    path = _SPEC.child("externalName")
    external_name = spec.get("externalName")
    if external_name is not None and not isinstance(external_name, str):
        return [*errors, path.invalid(external_name, "must be a string")]
    # A trailing dot marks the name as fully qualified; it is not part of the check.
    cname = (external_name or "").removesuffix(".")
    if cname:
        errors += [path.invalid(cname, m) for m in is_dns1123_subdomain(cname)]
    else:
        errors.append(path.required())
    return errors


def _int_field(value: Any, path: Path, errors: list[FieldError]) -> int | None:
    """An integer field as JSON decoding would accept it; records an error otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(path.invalid(value, "must be an integer"))
        return None
    return value


def _validate_ports(ports: list[Any]) -> list[FieldError]:
    """validateServicePort for each port."""
    errors: list[FieldError] = []
    ports_path = _SPEC.child("ports")
    require_name = len(ports) > 1
    names: set[str] = set()
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

        number = _int_field(port.get("port", 0), path.child("port"), errors)
        if number is not None:
            errors += [path.child("port").invalid(number, m) for m in is_valid_port_num(number)]

        protocol = port.get("protocol")
        if protocol in (None, ""):
            errors.append(path.child("protocol").required())
        elif protocol not in PROTOCOLS:
            errors.append(path.child("protocol").not_supported(protocol, PROTOCOLS))

        errors += _validate_target_port(port.get("targetPort"), path.child("targetPort"))

        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            app_path = path.child("appProtocol")
            if not isinstance(app_protocol, str):
                errors.append(app_path.invalid(app_protocol, "must be a string"))
            else:
                errors += [
                    app_path.invalid(app_protocol, m) for m in is_qualified_name(app_protocol)
                ]
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
    if affinity in (None, ""):
        return [_SPEC.child("sessionAffinity").required()]
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


def validate_cluster_ip_fields(spec: dict[str, Any]) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields: clusterIP(s), ipFamilies, ipFamilyPolicy."""
    if spec.get("type") == "ExternalName":
        return []  # all of them were checked to be unset
    errors: list[FieldError] = []
    ips_path = _SPEC.child("clusterIPs")
    families_path = _SPEC.child("ipFamilies")
    cluster_ip = spec.get("clusterIP")
    if cluster_ip is not None and not isinstance(cluster_ip, str):
        return [_SPEC.child("clusterIP").invalid(cluster_ip, "must be a string")]
    ips = _string_list(spec, "clusterIPs", errors)
    families = _string_list(spec, "ipFamilies", errors)
    if errors:
        return errors

    if cluster_ip:
        if not ips:
            errors.append(ips_path.required())
        elif ips[0] != cluster_ip:
            errors.append(ips_path.invalid(go_strings(ips), "first value must match `clusterIP`"))
    elif ips:
        detail = "must be empty when `clusterIP` is not specified"
        errors.append(ips_path.invalid(go_strings(ips), detail))

    seen: set[Any] = set()
    for i, family in enumerate(families):
        if family not in IP_FAMILIES:
            errors.append(families_path.index(i).not_supported(family, IP_FAMILIES))
        if _hashable(family) in seen:
            errors.append(families_path.index(i).duplicate(family))
        seen.add(_hashable(family))

    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in IP_FAMILY_POLICIES:
        errors.append(_SPEC.child("ipFamilyPolicy").not_supported(policy, IP_FAMILY_POLICIES))

    invalid_ips = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                invalid_ips = True
                detail = "'None' must be the first and only value"
                errors.append(ips_path.invalid(go_strings(ips), detail))
            continue
        ip_errors = is_valid_ip(ips_path.index(i), ip)
        invalid_ips = invalid_ips or bool(ip_errors)
        errors += ip_errors
    if len(ips) > 2:
        errors.append(ips_path.invalid(go_strings(ips), "may only hold up to 2 values"))
    # Bad addresses would make the checks below say misleading things.
    if invalid_ips:
        return errors

    if len(ips) > 1 and {ip_family(ip) for ip in ips} != {IPV4, IPV6}:
        detail = "may specify no more than one IP for each IP family"
        errors.append(ips_path.invalid(go_strings(ips), detail))

    if not is_headless(spec) and ips and families:
        for i, (ip, family) in enumerate(zip(ips, families, strict=False)):
            if family in IP_FAMILIES and ip_family(ip) != family:
                detail = f"expected an {family} value as indicated by `ipFamilies[{i}]`"
                errors.append(ips_path.index(i).invalid(ip, detail))
    return errors


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _init_ip_family_fields(spec: dict[str, Any], cluster_families: list[str]) -> list[FieldError]:
    """initIPFamilyFields on a create: defaults ipFamilyPolicy and ipFamilies in ``spec`` and
    returns what the allocator refuses, before any other validation runs."""
    if spec.get("type") == "ExternalName":
        return []
    selectorless_headless = spec.get("clusterIP") == "None" and not spec.get("selector")
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "RequireDualStack" if selectorless_headless else "SingleStack"
    if errors := validate_cluster_ip_fields(spec):
        return errors
    policy = spec["ipFamilyPolicy"]
    policy_path = _SPEC.child("ipFamilyPolicy")
    ips: list[Any] = spec.get("clusterIPs") or []
    families: list[Any] = list(spec.get("ipFamilies") or [])

    if policy == "SingleStack":
        if len(ips) == 2:
            detail = "when multiple cluster IPs are specified"
            errors.append(
                policy_path.invalid(
                    policy, f"must be 'RequireDualStack' or 'PreferDualStack' {detail}"
                )
            )
        if len(families) == 2:
            detail = "when multiple IP families are specified"
            errors.append(
                policy_path.invalid(
                    policy, f"must be 'RequireDualStack' or 'PreferDualStack' {detail}"
                )
            )
    for i, ip in enumerate(ips):
        if ip == "None":
            break
        family = ip_family(ip)
        if i >= len(families):
            if family not in cluster_families:
                detail = f"{family} is not configured on this cluster"
                errors.append(_SPEC.child("clusterIPs").index(i).invalid(go_strings(ips), detail))
            else:
                families.append(family)
    if errors:
        return errors

    if selectorless_headless:
        if not families:
            families = [cluster_families[0]]
        if len(families) < 2 and policy != "SingleStack":
            families.append(IPV6 if families[0] == IPV4 else IPV4)
        spec["ipFamilies"] = families
        return []

    if policy == "RequireDualStack" and len(cluster_families) < 2:
        errors.append(
            policy_path.invalid(policy, "this cluster is not configured for dual-stack services")
        )
    for i, family in enumerate(families):
        if family not in cluster_families:
            errors.append(
                _SPEC.child("ipFamilies").index(i).invalid(family, "not configured on this cluster")
            )
    if errors:
        return errors
    if not families:
        families = [cluster_families[0]]
    if policy != "SingleStack" and len(families) == 1 and len(cluster_families) == 2:
        families.append(IPV6 if families[0] == IPV4 else IPV4)
    spec["ipFamilies"] = families
    return []


def _validate_external_ips(spec: dict[str, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    path = _SPEC.child("externalIPs")
    for i, ip in enumerate(_string_list(spec, "externalIPs", errors)):
        invalid = is_valid_ip(path.index(i), ip)
        errors += invalid or validate_non_special_ip(path.index(i), ip)
    return errors


def _validate_node_ports(ports: list[Any], svc_type: Any) -> list[FieldError]:
    """No nodePort on a ClusterIP Service; no (protocol, nodePort) twice."""
    errors: list[FieldError] = []
    valid: list[tuple[int, Any, int]] = []
    for i, port in enumerate(ports):
        if not isinstance(port, dict) or port.get("nodePort") in (None, 0):
            continue
        path = _SPEC.child("ports").index(i).child("nodePort")
        node_port = _int_field(port["nodePort"], path, errors)
        if node_port is None:
            continue
        if svc_type == "ClusterIP":
            errors.append(path.forbidden("may not be used when `type` is 'ClusterIP'"))
        valid.append((i, port.get("protocol"), node_port))
    seen: set[tuple[Any, int]] = set()
    for i, protocol, node_port in valid:
        key = (_hashable(protocol), node_port)
        if key in seen:
            errors.append(_SPEC.child("ports").index(i).child("nodePort").duplicate(node_port))
        seen.add(key)
    return errors


def _validate_duplicate_ports(ports: list[Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        if not isinstance(port, dict):
            continue
        protocol, number = port.get("protocol"), port.get("port")
        key = (_hashable(protocol), _hashable(number))
        if key in seen:
            errors.append(
                _SPEC.child("ports").index(i).duplicate(go_service_port_key(protocol, number))
            )
        seen.add(key)
    return errors


def _validate_source_ranges(
    spec: dict[str, Any], annotations: dict[str, Any], svc_type: Any
) -> list[FieldError]:
    """loadBalancerSourceRanges, or when it is empty the older annotation of the same name."""
    errors: list[FieldError] = []
    only_lb = "may only be used when `type` is 'LoadBalancer'"
    ranges = spec.get("loadBalancerSourceRanges")
    if ranges:
        # The API server names this path with a capital L (a historical quirk kept verbatim).
        path = _SPEC.child("LoadBalancerSourceRanges")
        if svc_type != "LoadBalancer":
            errors.append(path.forbidden(only_lb))
        if not isinstance(ranges, list):
            return [*errors, path.invalid(ranges, "must be a list of CIDRs")]
        for i, value in enumerate(ranges):
            if not isinstance(value, str):
                errors.append(path.index(i).invalid(value, "must be a string"))
                continue
            errors += is_valid_cidr(path.index(i), value.strip())  # space padding is tolerated
    elif SOURCE_RANGES_ANNOTATION in annotations:
        path = _META.child("annotations").key(SOURCE_RANGES_ANNOTATION)
        if svc_type != "LoadBalancer":
            errors.append(path.forbidden(only_lb))
        value = annotations[SOURCE_RANGES_ANNOTATION]
        text = value.strip() if isinstance(value, str) else ""
        if text:
            for cidr in text.split(","):
                errors += is_valid_cidr(path, cidr.strip())
    return errors


def _validate_load_balancer_class(spec: dict[str, Any], svc_type: Any) -> list[FieldError]:
    path = _SPEC.child("loadBalancerClass")
    value = spec.get("loadBalancerClass")
    if value is None:
        return []
    if svc_type != "LoadBalancer":
        return [path.forbidden("may only be used when `type` is 'LoadBalancer'")]
    if not isinstance(value, str):
        return [path.invalid(value, "must be a string")]
    return [path.invalid(value, m) for m in is_qualified_name(value)]


def _validate_external_traffic_policy(
    spec: dict[str, Any], hcnp_allocated: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    etp_path = _SPEC.child("externalTrafficPolicy")
    etp = spec.get("externalTrafficPolicy")
    if not is_externally_accessible(spec):
        if etp not in (None, ""):
            errors.append(
                etp_path.invalid(etp, "may only be set for externally-accessible services")
            )
    elif etp in (None, ""):
        errors.append(etp_path.required())
    elif etp not in TRAFFIC_POLICIES:
        errors.append(etp_path.not_supported(etp, TRAFFIC_POLICIES))

    hcnp_path = _SPEC.child("healthCheckNodePort")
    hcnp = spec.get("healthCheckNodePort")
    if hcnp in (None, 0):
        if needs_health_check(spec) and not hcnp_allocated:
            errors.append(hcnp_path.required())
        return errors
    hcnp = _int_field(hcnp, hcnp_path, errors)
    if hcnp is None:
        return errors
    if not needs_health_check(spec):
        detail = (
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
        )
        errors.append(hcnp_path.invalid(hcnp, detail))
    else:
        errors += [hcnp_path.invalid(hcnp, m) for m in is_valid_port_num(hcnp)]
    return errors


def _validate_internal_traffic_policy(spec: dict[str, Any], svc_type: Any) -> list[FieldError]:
    path = _SPEC.child("internalTrafficPolicy")
    itp = spec.get("internalTrafficPolicy")
    if itp is None:
        # Not required of ExternalName Services, which older clusters stored without one.
        if svc_type in ("ClusterIP", "NodePort", "LoadBalancer"):
            return [path.required()]
        return []
    if itp not in TRAFFIC_POLICIES:
        return [path.not_supported(itp, TRAFFIC_POLICIES)]
    return []


def _validate_traffic_distribution(spec: dict[str, Any]) -> list[FieldError]:
    value = spec.get("trafficDistribution")
    if value is None or value in TRAFFIC_DISTRIBUTIONS:
        return []
    return [_SPEC.child("trafficDistribution").not_supported(value, TRAFFIC_DISTRIBUTIONS)]
