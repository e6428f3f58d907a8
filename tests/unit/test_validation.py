"""Service validation agrees with the API server: the same field paths and messages, on both
sides of every range edge (pkg/apis/core/validation/validation.go and the node-port allocator).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from nodeport_lb.model import NodePortRange, apply_defaults
from nodeport_lb.validation import validate_service, validate_service_object

RANGE = NodePortRange()
OUT_OF_RANGE = "provided port is not in the valid range. The range of valid ports is 30000-32767"


def python_lb(**spec: Any) -> dict[str, Any]:
    """The example python-lb Service (LoadBalancer, eTP Local), with spec fields overridden."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "python-lb"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "python"},
            "ports": [{"name": "http", "port": 80, "targetPort": 31000, "nodePort": 31001}],
        },
    }
    manifest["spec"].update(spec)
    return manifest


def errors_of(manifest: dict[str, Any], node_port_range: NodePortRange = RANGE) -> list[str]:
    return [str(e) for e in validate_service(apply_defaults(manifest), node_port_range)]


def with_port(**fields: Any) -> dict[str, Any]:
    manifest = python_lb()
    manifest["spec"]["ports"][0].update(fields)
    return manifest


def test_seed_service_is_valid() -> None:
    assert errors_of(python_lb()) == []


@pytest.mark.parametrize(
    ("node_port", "valid"),
    [(29999, False), (30000, True), (32767, True), (32768, False)],
)
def test_node_port_range_edges(node_port: int, valid: bool) -> None:
    expected = (
        [] if valid else [f"spec.ports[0].nodePort: Invalid value: {node_port}: {OUT_OF_RANGE}"]
    )
    assert errors_of(with_port(nodePort=node_port)) == expected


def test_node_port_range_is_configurable() -> None:
    wide = NodePortRange.parse("20000-39999")
    assert errors_of(with_port(nodePort=20000), wide) == []
    assert errors_of(with_port(nodePort=19999), wide) == [
        "spec.ports[0].nodePort: Invalid value: 19999: provided port is not in the valid range. "
        "The range of valid ports is 20000-39999"
    ]


@pytest.mark.parametrize(
    ("hcnp", "valid"), [(29999, False), (30000, True), (32767, True), (32768, False)]
)
def test_health_check_node_port_range_edges(hcnp: int, valid: bool) -> None:
    expected = [] if valid else [f"spec.healthCheckNodePort: Invalid value: {hcnp}: {OUT_OF_RANGE}"]
    assert errors_of(python_lb(healthCheckNodePort=hcnp)) == expected


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"externalTrafficPolicy": "Cluster"}, "Cluster"),
        ({"type": "NodePort"}, "NodePort"),
    ],
)
def test_health_check_node_port_only_for_loadbalancer_local(spec: dict, field: str) -> None:
    assert errors_of(python_lb(healthCheckNodePort=31897, **spec)) == [
        "spec.healthCheckNodePort: Invalid value: 31897: may only be set when `type` is "
        "'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
    ]


def test_health_check_node_port_must_not_reuse_a_node_port() -> None:
    assert errors_of(python_lb(healthCheckNodePort=31001)) == [
        "spec.healthCheckNodePort: Invalid value: 31001: provided port is already allocated"
    ]


def test_external_traffic_policy_only_for_externally_reachable_services() -> None:
    manifest = python_lb(type="ClusterIP")
    manifest["spec"]["ports"][0].pop("nodePort")
    assert errors_of(manifest) == [
        'spec.externalTrafficPolicy: Invalid value: "Local": '
        "may only be set for externally-accessible services"
    ]


def test_external_traffic_policy_values() -> None:
    assert errors_of(python_lb(externalTrafficPolicy="Global")) == [
        'spec.externalTrafficPolicy: Unsupported value: "Global": '
        'supported values: "Cluster", "Local"'
    ]


def test_external_traffic_policy_defaults_to_cluster() -> None:
    manifest = python_lb()
    del manifest["spec"]["externalTrafficPolicy"]
    assert apply_defaults(manifest)["spec"]["externalTrafficPolicy"] == "Cluster"
    assert errors_of(manifest) == []


def test_one_node_port_for_two_port_numbers_is_refused_by_the_allocator() -> None:
    """The allocator runs first: the second port number cannot have the nodePort the first
    one took, whatever the protocols."""
    for protocol in ("TCP", "UDP"):
        manifest = python_lb(
            ports=[
                {"name": "a", "port": 80, "nodePort": 31001},
                {"name": "b", "port": 81, "nodePort": 31001, "protocol": protocol},
            ]
        )
        assert errors_of(manifest) == [
            "spec.ports[1].nodePort: Invalid value: 31001: provided port is already allocated"
        ]


def test_duplicate_node_port_same_protocol_is_a_validation_error() -> None:
    manifest = apply_defaults(
        python_lb(
            healthCheckNodePort=31500,
            ports=[
                {"name": "a", "port": 80, "nodePort": 31001},
                {"name": "b", "port": 81, "nodePort": 31001},
            ],
        )
    )
    assert [str(e) for e in validate_service_object(manifest)] == [
        "spec.ports[1].nodePort: Duplicate value: 31001"
    ]


def test_same_node_port_for_tcp_and_udp_allowed() -> None:
    manifest = python_lb(
        ports=[
            {"name": "dns-tcp", "port": 53, "nodePort": 31053, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "nodePort": 31053, "protocol": "UDP"},
        ]
    )
    assert errors_of(manifest) == []


def test_duplicate_port_same_protocol_rejected() -> None:
    manifest = python_lb(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}])
    assert errors_of(manifest) == [
        'spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
        "AppProtocol:(*string)(nil), Port:80, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    ]


def test_allocate_load_balancer_node_ports_only_on_loadbalancer() -> None:
    assert errors_of(python_lb(type="NodePort", allocateLoadBalancerNodePorts=False)) == [
        "spec.allocateLoadBalancerNodePorts: Forbidden: "
        "may only be used when `type` is 'LoadBalancer'"
    ]
    assert errors_of(python_lb(allocateLoadBalancerNodePorts=False)) == []


@pytest.mark.parametrize(
    ("timeout", "valid"), [(0, False), (1, True), (86400, True), (86401, False)]
)
def test_client_ip_affinity_timeout_edges(timeout: int, valid: bool) -> None:
    manifest = python_lb(
        sessionAffinity="ClientIP",
        sessionAffinityConfig={"clientIP": {"timeoutSeconds": timeout}},
    )
    expected = (
        []
        if valid
        else [
            f"spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: {timeout}: "
            "must be greater than 0 and less than 86400"
        ]
    )
    assert errors_of(manifest) == expected


def test_client_ip_affinity_timeout_defaults_to_10800() -> None:
    spec = apply_defaults(python_lb(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_affinity_config_dropped_by_defaulting_when_affinity_is_none() -> None:
    manifest = python_lb(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 10}})
    assert "sessionAffinityConfig" not in apply_defaults(manifest)["spec"]
    assert errors_of(manifest) == []
    # what validation itself says, when an object reaches it with both
    manifest["spec"]["sessionAffinity"] = "None"
    assert [str(e) for e in validate_service_object(manifest) if "Affinity" in str(e)] == [
        "spec.sessionAffinityConfig: Forbidden: must not be set when session affinity is None"
    ]


def test_port_names_required_with_several_ports() -> None:
    manifest = python_lb(ports=[{"port": 80}, {"name": "b", "port": 81}])
    assert errors_of(manifest) == ["spec.ports[0].name: Required value"]


def test_port_name_is_a_dns1123_label() -> None:
    assert errors_of(with_port(name="HTTP")) == [
        'spec.ports[0].name: Invalid value: "HTTP": a lowercase RFC 1123 label must consist of '
        "lower case alphanumeric characters or '-', and must start and end with an alphanumeric "
        "character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    ]


def test_duplicate_port_names() -> None:
    manifest = python_lb(ports=[{"name": "a", "port": 80}, {"name": "a", "port": 81}])
    assert errors_of(manifest) == ['spec.ports[1].name: Duplicate value: "a"']


def test_service_name_is_a_dns1035_label() -> None:
    manifest = python_lb()
    manifest["metadata"]["name"] = "1python"
    assert errors_of(manifest) == [
        'metadata.name: Invalid value: "1python": a DNS-1035 label must consist of lower case '
        "alphanumeric characters or '-', start with an alphabetic character, and end with an "
        "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
        "'[a-z]([-a-z0-9]*[a-z0-9])?')"
    ]


@pytest.mark.parametrize(("length", "valid"), [(63, True), (64, False)])
def test_service_name_length_edge(length: int, valid: bool) -> None:
    manifest = python_lb()
    manifest["metadata"]["name"] = "a" * length
    errors = errors_of(manifest)
    assert (errors == []) is valid
    if not valid:
        assert errors == [
            f'metadata.name: Invalid value: "{"a" * length}": must be no more than 63 characters'
        ]


def test_name_required() -> None:
    manifest = python_lb()
    del manifest["metadata"]["name"]
    assert errors_of(manifest) == [
        "metadata.name: Required value: name or generateName is required"
    ]


@pytest.mark.parametrize(("port", "valid"), [(0, False), (1, True), (65535, True), (65536, False)])
def test_port_number_edges(port: int, valid: bool) -> None:
    errors = errors_of(with_port(port=port, targetPort=8080))
    expected = (
        []
        if valid
        else [f"spec.ports[0].port: Invalid value: {port}: must be between 1 and 65535, inclusive"]
    )
    assert errors == expected


def test_protocol_values() -> None:
    assert errors_of(with_port(protocol="ICMP")) == [
        'spec.ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'
    ]


def test_target_port_by_name() -> None:
    assert errors_of(with_port(targetPort="web")) == []
    assert errors_of(with_port(targetPort="web--x")) == [
        'spec.ports[0].targetPort: Invalid value: "web--x": must not contain consecutive hyphens'
    ]


def test_kubelet_port_on_a_loadbalancer_is_allowed_since_1_33() -> None:
    assert errors_of(with_port(port=10250)) == []


def test_node_port_forbidden_on_cluster_ip() -> None:
    manifest = python_lb(type="ClusterIP")
    del manifest["spec"]["externalTrafficPolicy"]
    assert errors_of(manifest) == [
        "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"
    ]


def test_ports_required() -> None:
    assert errors_of(python_lb(ports=[])) == ["spec.ports: Required value"]


def test_type_values() -> None:
    assert errors_of(python_lb(type="Ingress")) == [
        'spec.type: Unsupported value: "Ingress": supported values: "ClusterIP", '
        '"ExternalName", "LoadBalancer", "NodePort"',
        # not externally accessible any more, so the policy is refused too, as upstream does
        'spec.externalTrafficPolicy: Invalid value: "Local": '
        "may only be set for externally-accessible services",
    ]


def test_selector_labels() -> None:
    assert errors_of(python_lb(selector={"app": "py thon"})) == [
        'spec.selector: Invalid value: "py thon": a valid label must be an empty string or '
        "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
        "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    ]
    assert len(errors_of(python_lb(selector={"bad key!": "x"}))) == 1


def test_source_ranges_are_cidrs_and_only_on_loadbalancer() -> None:
    assert errors_of(python_lb(loadBalancerSourceRanges=["10.0.0.0/8", " 192.168.0.0/16 "])) == []
    assert errors_of(python_lb(loadBalancerSourceRanges=["10.0.0.300/8"])) == [
        'spec.LoadBalancerSourceRanges[0]: Invalid value: "10.0.0.300/8": must be a valid CIDR '
        "value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    ]
    manifest = python_lb(type="NodePort", loadBalancerSourceRanges=["10.0.0.0/8"])
    assert errors_of(manifest) == [
        "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'"
    ]


def test_wrong_types_are_errors_not_exceptions() -> None:
    assert errors_of(with_port(port="eighty")) == [
        'spec.ports[0].port: Invalid value: "eighty": must be an integer'
    ]
    assert errors_of(python_lb(ports="80")) == ['spec.ports: Invalid value: "80": must be a list']
    manifest = python_lb()
    manifest["spec"] = ["not", "a", "map"]
    assert errors_of(manifest) != []


def test_several_errors_reported_together() -> None:
    manifest = python_lb(externalTrafficPolicy="Sometimes", loadBalancerClass="a/b/c")
    manifest["metadata"]["name"] = "Python"
    paths = [e.split(":")[0] for e in errors_of(manifest)]
    assert paths == ["metadata.name", "spec.loadBalancerClass", "spec.externalTrafficPolicy"]


def test_allocator_refusals_come_before_validation_and_alone() -> None:
    manifest = python_lb(healthCheckNodePort=40000)
    manifest["metadata"]["name"] = "Python"
    assert errors_of(manifest) == [
        f"spec.healthCheckNodePort: Invalid value: 40000: {OUT_OF_RANGE}"
    ]
    manifest["spec"]["ports"][0]["nodePort"] = 29999
    assert errors_of(manifest) == [f"spec.ports[0].nodePort: Invalid value: 29999: {OUT_OF_RANGE}"]


def test_defaults_do_not_mutate_input() -> None:
    manifest = python_lb()
    before = copy.deepcopy(manifest)
    apply_defaults(manifest)
    assert manifest == before
