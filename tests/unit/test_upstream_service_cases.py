"""Kubernetes' own Service validation cases, ported one for one.

Each case names the upstream test it comes from (kubernetes/kubernetes,
pkg/apis/core/validation/validation_test.go, as of Kubernetes 1.33) and keeps its name and its
expected number of errors. Upstream runs them on ``makeValidService()`` tweaked per case and
counts the errors of ``ValidateServiceCreate`` (``ValidateService``) or of
``validateServiceExternalTrafficPolicy``; so do these, through ``validate_service_object``.
The cases that apply to an update only are left out. ``CREATE_PATH_CASES`` below cover what
the registry does before validation (pkg/registry/core/service/storage/alloc.go), through
``validate_service``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from nodeport_lb.model import NodePortRange, apply_defaults
from nodeport_lb.validation import validate_service, validate_service_object

CREATE = "TestValidateServiceCreate"
ETP = "TestValidateServiceExternalTrafficPolicy"
ALLOC = "alloc.go"  # pkg/registry/core/service/storage/alloc.go (initIPFamilyFields, initNodePorts)

Tweak = Callable[[dict[str, Any]], None]


def make_valid_service() -> dict[str, Any]:
    """makeValidService(): the object every upstream case starts from."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "valid", "namespace": "valid", "labels": {}, "annotations": {}},
        "spec": {
            "selector": {"key": "val"},
            "sessionAffinity": "None",
            "type": "ClusterIP",
            "ports": [{"name": "p", "protocol": "TCP", "port": 8675, "targetPort": 8675}],
            "internalTrafficPolicy": "Cluster",
        },
    }


def spec(**fields: Any) -> Tweak:
    return lambda s: s["spec"].update(fields)


def meta(**fields: Any) -> Tweak:
    return lambda s: s["metadata"].update(fields)


def annotate(**pairs: str) -> Tweak:
    return lambda s: s["metadata"]["annotations"].update(pairs)


def label(key: str, value: str) -> Tweak:
    return lambda s: s["metadata"]["labels"].update({key: value})


def port0(**fields: Any) -> Tweak:
    return lambda s: s["spec"]["ports"][0].update(fields)


def add_ports(*ports: dict[str, Any]) -> Tweak:
    return lambda s: s["spec"]["ports"].extend(copy.deepcopy(list(ports)))


def drop(*names: str) -> Tweak:
    def tweak(s: dict[str, Any]) -> None:
        for name in names:
            s["spec"].pop(name, None)

    return tweak


def both(*tweaks: Tweak) -> Tweak:
    def tweak(s: dict[str, Any]) -> None:
        for t in tweaks:
            t(s)

    return tweak


def port(name: str, number: int, protocol: str = "TCP", **more: Any) -> dict[str, Any]:
    return {"name": name, "port": number, "protocol": protocol, "targetPort": number, **more}


LB = spec(type="LoadBalancer", externalTrafficPolicy="Cluster", allocateLoadBalancerNodePorts=True)
NODEPORT = spec(type="NodePort", externalTrafficPolicy="Cluster")
LB_LOCAL = spec(
    type="LoadBalancer", externalTrafficPolicy="Local", allocateLoadBalancerNodePorts=True
)
DUAL = "RequireDualStack"
SOURCE_RANGES = "service.beta.kubernetes.io/load-balancer-source-ranges"


def ips(first: str, *more: str, **fields: Any) -> Tweak:
    return spec(clusterIP=first, clusterIPs=[first, *more], **fields)


# (upstream test, case name, tweak, number of errors upstream expects)
VALIDATION_CASES: list[tuple[str, str, Tweak, int]] = [
    (CREATE, "missing namespace", meta(namespace=""), 1),
    (CREATE, "invalid namespace", meta(namespace="-123"), 1),
    (CREATE, "missing name", meta(name=""), 1),
    (CREATE, "invalid name", meta(name="-123"), 1),
    (CREATE, "too long name", meta(name="a" * 64), 1),
    (CREATE, "invalid generateName", meta(generateName="-123"), 1),
    (CREATE, "too long generateName", meta(generateName="a" * 64), 1),
    (CREATE, "invalid label", label("NoUppercaseOrSpecialCharsLike=Equals", "bar"), 1),
    (CREATE, "invalid annotation", annotate(**{"NoSpecialCharsLike=Equals": "bar"}), 1),
    (CREATE, "nil selector", spec(selector=None), 0),
    (
        CREATE,
        "invalid selector",
        spec(selector={"key": "val", "NoSpecialCharsLike=Equals": "bar"}),
        1,
    ),
    (CREATE, "missing session affinity", spec(sessionAffinity=""), 1),
    (CREATE, "missing type", spec(type=""), 1),
    (CREATE, "missing ports", spec(ports=None), 1),
    (
        CREATE,
        "missing ports but headless",
        spec(ports=None, clusterIP="None", clusterIPs=["None"]),
        0,
    ),
    (CREATE, "empty port[0] name", port0(name=""), 0),
    (CREATE, "empty port[1] name", add_ports(port("", 12345)), 1),
    (CREATE, "empty multi-port port[0] name", both(port0(name=""), add_ports(port("p", 12345))), 1),
    (CREATE, "invalid port name", port0(name="INVALID"), 1),
    (CREATE, "missing protocol", port0(protocol=""), 1),
    (CREATE, "invalid protocol", port0(protocol="INVALID"), 1),
    (CREATE, "invalid cluster ip", ips("invalid"), 1),
    (CREATE, "missing port", port0(port=0), 1),
    (CREATE, "invalid port", port0(port=65536), 1),
    (CREATE, "invalid TargetPort int", port0(targetPort=65536), 1),
    (CREATE, "valid port headless", both(port0(port=11722, targetPort=11722), ips("None")), 0),
    (CREATE, "invalid port headless 1", both(port0(port=11722, targetPort=11721), ips("None")), 0),
    (
        CREATE,
        "invalid port headless 2",
        both(port0(port=11722, targetPort="target"), ips("None")),
        0,
    ),
    (
        CREATE,
        "invalid publicIPs localhost",
        spec(externalTrafficPolicy="Cluster", externalIPs=["127.0.0.1"]),
        1,
    ),
    (
        CREATE,
        "invalid publicIPs unspecified",
        spec(externalTrafficPolicy="Cluster", externalIPs=["0.0.0.0"]),
        1,
    ),
    (
        CREATE,
        "invalid publicIPs loopback",
        spec(externalTrafficPolicy="Cluster", externalIPs=["127.0.0.1"]),
        1,
    ),
    (
        CREATE,
        "invalid publicIPs host",
        spec(externalTrafficPolicy="Cluster", externalIPs=["myhost.mydomain"]),
        1,
    ),
    (CREATE, "valid publicIPs", spec(externalTrafficPolicy="Cluster", externalIPs=["1.2.3.4"]), 0),
    (CREATE, "dup port name", both(port0(name="p"), add_ports(port("p", 12345))), 1),
    (CREATE, "valid load balancer protocol UDP 1", both(LB, port0(protocol="UDP")), 0),
    (
        CREATE,
        "valid load balancer protocol UDP 2",
        both(LB, spec(ports=[port("q", 12345, "UDP")])),
        0,
    ),
    (CREATE, "load balancer with mix protocol", both(LB, add_ports(port("q", 12345, "UDP"))), 0),
    (CREATE, "valid 1", lambda s: None, 0),
    (CREATE, "valid 2", port0(protocol="UDP", targetPort=12345), 0),
    (CREATE, "valid 3", port0(targetPort="http"), 0),
    (CREATE, "valid cluster ip - none ", ips("None"), 0),
    (CREATE, "valid cluster ip - empty", both(spec(clusterIPs=None), port0(targetPort="http")), 0),
    (CREATE, "valid type - clusterIP", spec(type="ClusterIP"), 0),
    (CREATE, "valid type - loadbalancer", LB, 0),
    (
        CREATE,
        "valid type - loadbalancer with allocateLoadBalancerNodePorts=false",
        both(LB, spec(allocateLoadBalancerNodePorts=False)),
        0,
    ),
    (
        CREATE,
        "invalid type - missing AllocateLoadBalancerNodePorts for loadbalancer type",
        spec(type="LoadBalancer", externalTrafficPolicy="Cluster"),
        1,
    ),
    (CREATE, "valid type loadbalancer 2 ports", both(LB, add_ports(port("q", 12345))), 0),
    (
        CREATE,
        "duplicate nodeports",
        both(NODEPORT, add_ports(port("q", 1, nodePort=1), port("r", 2, nodePort=1))),
        1,
    ),
    (
        CREATE,
        "duplicate nodeports (different protocols)",
        both(
            NODEPORT,
            add_ports(
                port("q", 1, nodePort=1),
                port("r", 2, "UDP", nodePort=1),
                port("s", 3, "SCTP", nodePort=1),
            ),
        ),
        0,
    ),
    (
        CREATE,
        "invalid duplicate ports (with same protocol)",
        add_ports(port("q", 12345, targetPort=8080), port("r", 12345, targetPort=80)),
        1,
    ),
    (
        CREATE,
        "valid duplicate ports (with different protocols)",
        add_ports(
            port("q", 12345, targetPort=8080),
            port("r", 12345, "UDP", targetPort=80),
            port("s", 12345, "SCTP", targetPort=8088),
        ),
        0,
    ),
    (CREATE, "valid type - cluster", spec(type="ClusterIP"), 0),
    (CREATE, "valid type - nodeport", NODEPORT, 0),
    (CREATE, "valid type - loadbalancer with allocateLoadBalancerNodePorts=true", LB, 0),
    (
        CREATE,
        "valid type loadbalancer with NodePort",
        both(LB, add_ports(port("q", 12345, nodePort=12345))),
        0,
    ),
    (
        CREATE,
        "valid type=NodePort service with NodePort",
        both(NODEPORT, add_ports(port("q", 12345, nodePort=12345))),
        0,
    ),
    (
        CREATE,
        "valid type=NodePort service without NodePort",
        both(NODEPORT, add_ports(port("q", 12345))),
        0,
    ),
    (CREATE, "valid cluster service without NodePort", add_ports(port("q", 12345)), 0),
    (
        CREATE,
        "invalid cluster service with NodePort",
        add_ports(port("q", 12345, nodePort=12345)),
        1,
    ),
    (
        CREATE,
        "invalid public service with duplicate NodePort",
        both(NODEPORT, add_ports(port("p1", 1, nodePort=1), port("p2", 2, nodePort=1))),
        1,
    ),
    (CREATE, "valid type=LoadBalancer", both(LB, add_ports(port("q", 12345))), 0),
    (
        CREATE,
        "valid port type=LoadBalancer",
        both(LB, add_ports(port("kubelet", 10250, targetPort=12345))),
        0,
    ),
    (
        CREATE,
        "valid LoadBalancer source range annotation",
        both(LB, annotate(**{SOURCE_RANGES: "1.2.3.0/24,  5.6.0.0/16"})),
        0,
    ),
    (
        CREATE,
        "valid empty LoadBalancer source range annotation",
        both(LB, annotate(**{SOURCE_RANGES: ""})),
        0,
    ),
    (
        CREATE,
        "valid whitespace-only LoadBalancer source range annotation",
        both(LB, annotate(**{SOURCE_RANGES: "  "})),
        0,
    ),
    (
        CREATE,
        "invalid LoadBalancer source range annotation (hostname)",
        both(LB, annotate(**{SOURCE_RANGES: "foo.bar"})),
        1,
    ),
    (
        CREATE,
        "invalid LoadBalancer source range annotation (invalid CIDR)",
        both(LB, annotate(**{SOURCE_RANGES: "1.2.3.4/33"})),
        1,
    ),
    (
        CREATE,
        "invalid LoadBalancer source range annotation for non LoadBalancer type service",
        annotate(**{SOURCE_RANGES: "1.2.3.0/24"}),
        1,
    ),
    (
        CREATE,
        "invalid empty-but-set LoadBalancer source range annotation for non LoadBalancer type service",  # noqa: E501 (upstream's case name)
        annotate(**{SOURCE_RANGES: ""}),
        1,
    ),
    (
        CREATE,
        "valid LoadBalancer source range",
        both(LB, spec(loadBalancerSourceRanges=["1.2.3.0/24", "5.6.0.0/16"])),
        0,
    ),
    (
        CREATE,
        "valid LoadBalancer source range with whitespace",
        both(LB, spec(loadBalancerSourceRanges=["1.2.3.0/24  ", " 5.6.0.0/16"])),
        0,
    ),
    (
        CREATE,
        "invalid empty LoadBalancer source range",
        both(LB, spec(loadBalancerSourceRanges=["   "])),
        1,
    ),
    (
        CREATE,
        "invalid LoadBalancer source range (hostname)",
        both(LB, spec(loadBalancerSourceRanges=["foo.bar"])),
        1,
    ),
    (
        CREATE,
        "invalid LoadBalancer source range (invalid CIDR)",
        both(LB, spec(loadBalancerSourceRanges=["1.2.3.4/33"])),
        1,
    ),
    (
        CREATE,
        "invalid source range for non LoadBalancer type service",
        spec(loadBalancerSourceRanges=["1.2.3.0/24", "5.6.0.0/16"]),
        1,
    ),
    (
        CREATE,
        "invalid source range annotation ignored with valid source range field",
        both(
            LB,
            annotate(**{SOURCE_RANGES: "foo.bar"}),
            spec(loadBalancerSourceRanges=["1.2.3.0/24", "5.6.0.0/16"]),
        ),
        0,
    ),
    (
        CREATE,
        "valid ExternalName",
        spec(type="ExternalName", externalName="foo.bar.example.com"),
        0,
    ),
    (
        CREATE,
        "valid ExternalName (trailing dot)",
        spec(type="ExternalName", externalName="foo.bar.example.com."),
        0,
    ),
    (
        CREATE,
        "invalid ExternalName clusterIP (valid IP)",
        both(spec(type="ExternalName", externalName="foo.bar.example.com"), ips("1.2.3.4")),
        1,
    ),
    (
        CREATE,
        "invalid ExternalName clusterIP (None)",
        both(spec(type="ExternalName", externalName="foo.bar.example.com"), ips("None")),
        1,
    ),
    (
        CREATE,
        "invalid ExternalName (not a DNS name)",
        spec(type="ExternalName", externalName="-123"),
        1,
    ),
    (CREATE, "LoadBalancer type cannot have None ClusterIP", both(ips("None"), LB), 1),
    (
        CREATE,
        "invalid node port with clusterIP None",
        both(NODEPORT, add_ports(port("q", 1, nodePort=1)), ips("None")),
        1,
    ),
    (
        CREATE,
        "invalid externalTraffic field",
        spec(
            type="LoadBalancer", allocateLoadBalancerNodePorts=True, externalTrafficPolicy="invalid"
        ),
        1,
    ),
    (CREATE, "nil internalTraffic field when feature gate is on", drop("internalTrafficPolicy"), 1),
    (
        CREATE,
        "internalTrafficPolicy field nil when type is ExternalName",
        both(drop("internalTrafficPolicy"), spec(type="ExternalName", externalName="foo.bar.com")),
        0,
    ),
    (
        CREATE,
        "internalTrafficPolicy field is set when type is ExternalName",
        spec(internalTrafficPolicy="Cluster", type="ExternalName", externalName="foo.bar.com"),
        0,
    ),
    (CREATE, "invalid internalTraffic field", spec(internalTrafficPolicy="invalid"), 1),
    (
        CREATE,
        "internalTrafficPolicy field set to Cluster",
        spec(internalTrafficPolicy="Cluster"),
        0,
    ),
    (CREATE, "internalTrafficPolicy field set to Local", spec(internalTrafficPolicy="Local"), 0),
    (CREATE, "negative healthCheckNodePort field", both(LB_LOCAL, spec(healthCheckNodePort=-1)), 1),
    (
        CREATE,
        "negative healthCheckNodePort field (a valid one, named so upstream)",
        both(LB_LOCAL, spec(healthCheckNodePort=31100)),
        0,
    ),
    (
        CREATE,
        "invalid timeoutSeconds field",
        spec(
            sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {"timeoutSeconds": -1}}
        ),
        1,
    ),
    (
        CREATE,
        "sessionAffinityConfig can't be set when session affinity is None",
        both(
            LB,
            spec(
                sessionAffinity="None", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 90}}
            ),
        ),
        1,
    ),
    (
        CREATE,
        "invalid, service with invalid ipFamilies",
        spec(ipFamilies=["not-a-valid-ip-family"]),
        1,
    ),
    (
        CREATE,
        "invalid, service with invalid ipFamilies (2nd)",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "not-a-valid-ip-family"]),
        1,
    ),
    (
        CREATE,
        "IPFamilyPolicy(singleStack) is set for two families",
        spec(ipFamilyPolicy="SingleStack", ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, IPFamilyPolicy(preferDualStack) is set for two families (note: alloc sets families)",  # noqa: E501 (upstream's case name)
        spec(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "invalid, service with 2+ ipFamilies",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6", "IPv4"]),
        1,
    ),
    (
        CREATE,
        "invalid, service with same ip families",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv6", "IPv6"]),
        1,
    ),
    (CREATE, "valid, nil service ipFamilies", spec(ipFamilies=None), 0),
    (CREATE, "valid, service with valid ipFamilies (v4)", spec(ipFamilies=["IPv4"]), 0),
    (CREATE, "valid, service with valid ipFamilies (v6)", spec(ipFamilies=["IPv6"]), 0),
    (
        CREATE,
        "valid, service with valid ipFamilies(v4,v6)",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, service with valid ipFamilies(v6,v4)",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv6", "IPv4"]),
        0,
    ),
    (
        CREATE,
        "valid, service preferred dual stack with single family",
        spec(ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv6"]),
        0,
    ),
    (CREATE, "invalid, garbage single ip", ips("garbage-ip"), 1),
    (
        CREATE,
        "invalid, garbage ips",
        ips("garbage-ip", "garbage-second-ip", ipFamilyPolicy=DUAL),
        2,
    ),
    (CREATE, "invalid, garbage first ip", ips("garbage-ip", "2001::1", ipFamilyPolicy=DUAL), 1),
    (CREATE, "invalid, garbage second ip", ips("2001::1", "garbage-ip", ipFamilyPolicy=DUAL), 1),
    (CREATE, "invalid, NONE + IP", ips("None", "2001::1", ipFamilyPolicy=DUAL), 1),
    (CREATE, "invalid, IP + NONE", ips("2001::1", "None", ipFamilyPolicy=DUAL), 1),
    (CREATE, "invalid, EMPTY STRING + IP", ips("", "2001::1", ipFamilyPolicy=DUAL), 2),
    (CREATE, "invalid, IP + EMPTY STRING", ips("2001::1", "", ipFamilyPolicy=DUAL), 1),
    (
        CREATE,
        "invalid, same ip family (v6)",
        ips("2001::1", "2001::4", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        2,
    ),
    (
        CREATE,
        "invalid, same ip family (v4)",
        ips("10.0.0.1", "10.0.0.10", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        2,
    ),
    (
        CREATE,
        "invalid, more than two ips",
        ips("10.0.0.1", "2001::1", "10.0.0.10", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        1,
    ),
    (
        CREATE,
        " multi ip, dualstack not set (request for downgrade)",
        ips("10.0.0.1", "2001::1", ipFamilyPolicy="SingleStack", ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, headless-no-selector + multi family + gate off",
        both(ips("None", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]), spec(selector=None)),
        0,
    ),
    (
        CREATE,
        "valid, multi ip, single ipfamilies preferDualStack",
        ips("10.0.0.1", "2001::1", ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv4"]),
        0,
    ),
    (
        CREATE,
        "valid, multi ip, single ipfamilies (must match when provided) + requireDualStack",
        ips("10.0.0.1", "2001::1", ipFamilyPolicy=DUAL, ipFamilies=["IPv4"]),
        0,
    ),
    (CREATE, "invalid, families don't match (v4=>v6)", ips("10.0.0.1", ipFamilies=["IPv6"]), 1),
    (CREATE, "invalid, families don't match (v6=>v4)", ips("2001::1", ipFamilies=["IPv4"]), 1),
    (CREATE, "valid. no field set", lambda s: None, 0),
    (CREATE, "valid, single ip", ips("10.0.0.1", ipFamilyPolicy="SingleStack"), 0),
    (CREATE, "valid, single family", spec(ipFamilyPolicy="SingleStack", ipFamilies=["IPv6"]), 0),
    (
        CREATE,
        "valid, single ip + single family",
        ips("2001::1", ipFamilyPolicy="SingleStack", ipFamilies=["IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, single ip + single family (dual stack requested)",
        ips("2001::1", ipFamilyPolicy="PreferDualStack", ipFamilies=["IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, single ip, multi ipfamilies",
        ips("10.0.0.1", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, multi ips, multi ipfamilies (4,6)",
        ips("10.0.0.1", "2001::1", ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (
        CREATE,
        "valid, ips, multi ipfamilies (6,4)",
        ips("2001::1", "10.0.0.1", ipFamilyPolicy=DUAL, ipFamilies=["IPv6", "IPv4"]),
        0,
    ),
    (CREATE, "valid, multi ips (6,4)", ips("2001::1", "10.0.0.1", ipFamilyPolicy=DUAL), 0),
    (
        CREATE,
        "valid, multi ipfamilies (6,4)",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv6", "IPv4"]),
        0,
    ),
    (CREATE, "valid, multi ips (4,6)", ips("10.0.0.1", "2001::1", ipFamilyPolicy=DUAL), 0),
    (
        CREATE,
        "valid,  multi ipfamilies (4,6)",
        spec(ipFamilyPolicy=DUAL, ipFamilies=["IPv4", "IPv6"]),
        0,
    ),
    (CREATE, "valid, dual stack", spec(ipFamilyPolicy=DUAL), 0),
    (
        CREATE,
        "valid appProtocol",
        spec(
            ports=[{"port": 12345, "targetPort": 12345, "protocol": "TCP", "appProtocol": "HTTP"}]
        ),
        0,
    ),
    (
        CREATE,
        "valid custom appProtocol",
        spec(
            ports=[
                {
                    "port": 12345,
                    "targetPort": 12345,
                    "protocol": "TCP",
                    "appProtocol": "example.com/protocol",
                }
            ]
        ),
        0,
    ),
    (
        CREATE,
        "invalid appProtocol",
        spec(
            ports=[
                {
                    "port": 12345,
                    "targetPort": 12345,
                    "protocol": "TCP",
                    "appProtocol": "example.com/protocol_with{invalid}[characters]",
                }
            ]
        ),
        1,
    ),
    (
        CREATE,
        "invalid cluster ip != clusterIP in multi ip service",
        spec(ipFamilyPolicy=DUAL, clusterIP="10.0.0.10", clusterIPs=["10.0.0.1", "2001::1"]),
        1,
    ),
    (
        CREATE,
        "invalid cluster ip != clusterIP in single ip service",
        spec(clusterIP="10.0.0.10", clusterIPs=["10.0.0.1"]),
        1,
    ),
    (
        CREATE,
        "Use AllocateLoadBalancerNodePorts when type is not LoadBalancer",
        spec(allocateLoadBalancerNodePorts=True),
        1,
    ),
    (
        CREATE,
        "valid LoadBalancerClass when type is LoadBalancer",
        both(LB, spec(loadBalancerClass="test.com/test-load-balancer-class")),
        0,
    ),
    (
        CREATE,
        "invalid LoadBalancerClass",
        both(LB, spec(loadBalancerClass="Bad/LoadBalancerClass")),
        1,
    ),
    (
        CREATE,
        "invalid: set LoadBalancerClass when type is not LoadBalancer",
        spec(type="ClusterIP", loadBalancerClass="test.com/test-load-balancer-class"),
        1,
    ),
    (
        CREATE,
        "topology annotations are mismatched",
        annotate(
            **{
                "service.kubernetes.io/topology-aware-hints": "original",
                "service.kubernetes.io/topology-mode": "different",
            }
        ),
        1,
    ),
    (
        CREATE,
        "valid: trafficDistribution field set to PreferClose",
        spec(trafficDistribution="PreferClose"),
        0,
    ),
    (
        CREATE,
        "invalid: trafficDistribution field set to Random",
        spec(trafficDistribution="Random"),
        1,
    ),
]

ETP_CASES: list[tuple[str, str, Tweak, int]] = [
    (
        ETP,
        "valid loadBalancer service with externalTrafficPolicy and healthCheckNodePort set",
        both(LB_LOCAL, spec(healthCheckNodePort=34567)),
        0,
    ),
    (
        ETP,
        "valid nodePort service with externalTrafficPolicy set",
        spec(type="NodePort", externalTrafficPolicy="Local"),
        0,
    ),
    (
        ETP,
        "valid clusterIP service with none of externalTrafficPolicy and healthCheckNodePort set",
        spec(type="ClusterIP"),
        0,
    ),
    (
        ETP,
        "cannot set healthCheckNodePort field on loadBalancer service with externalTrafficPolicy!=Local",  # noqa: E501 (upstream's case name)
        both(LB, spec(healthCheckNodePort=34567)),
        1,
    ),
    (
        ETP,
        "cannot set healthCheckNodePort field on nodePort service",
        spec(type="NodePort", externalTrafficPolicy="Local", healthCheckNodePort=34567),
        1,
    ),
    (
        ETP,
        "cannot set externalTrafficPolicy or healthCheckNodePort fields on clusterIP service",
        spec(type="ClusterIP", externalTrafficPolicy="Local", healthCheckNodePort=34567),
        2,
    ),
    (
        ETP,
        "cannot set externalTrafficPolicy field on ExternalName service",
        spec(type="ExternalName", externalTrafficPolicy="Local"),
        1,
    ),
    (ETP, "externalTrafficPolicy is required on NodePort service", spec(type="NodePort"), 1),
    (
        ETP,
        "externalTrafficPolicy is required on LoadBalancer service",
        spec(type="LoadBalancer"),
        1,
    ),
    (
        ETP,
        "externalTrafficPolicy is required on ClusterIP service with externalIPs",
        spec(type="ClusterIP", externalIPs=["1.2.3,4"]),
        1,
    ),
]


def case_id(case: tuple[str, str, Tweak, int]) -> str:
    return f"{case[0]}: {case[1]}"


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=case_id)
def test_validate_service_create(case: tuple[str, str, Tweak, int]) -> None:
    _, _, tweak, expected = case
    svc = make_valid_service()
    tweak(svc)
    errors = validate_service_object(svc)
    assert len(errors) == expected, [str(e) for e in errors]


@pytest.mark.parametrize("case", ETP_CASES, ids=case_id)
def test_validate_service_external_traffic_policy(case: tuple[str, str, Tweak, int]) -> None:
    _, _, tweak, expected = case
    svc = make_valid_service()
    tweak(svc)
    # upstream counts the errors of validateServiceExternalTrafficPolicy alone
    fields = ("spec.externalTrafficPolicy", "spec.healthCheckNodePort")
    errors = [e for e in validate_service_object(svc) if e.field in fields]
    assert len(errors) == expected, [str(e) for e in errors]


DEFAULTS = "defaults.go"  # pkg/apis/core/v1/defaults.go (SetDefaults_Service)
STRATEGY = "storage.go"  # pkg/registry/core/service/storage (beginCreate, name generation)
V4, DUAL_STACK = ("IPv4",), ("IPv4", "IPv6")
RANGE_TEXT = "provided port is not in the valid range. The range of valid ports is 30000-32767"


def python_lb() -> dict[str, Any]:
    """A Service as users write it (the example python-lb), before the API server's defaulting."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "python-lb"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "python"},
            "ports": [{"name": "http", "port": 80, "targetPort": 31000}],
        },
    }


# (source, case, tweak, cluster IP families, the exact errors the user sees)
CREATE_PATH_CASES: list[tuple[str, str, Tweak, tuple[str, ...], list[str]]] = [
    (
        ALLOC,
        "SingleStack with two cluster IPs",
        ips("10.0.0.1", "2001::1", ipFamilyPolicy="SingleStack"),
        DUAL_STACK,
        [
            "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or "
            "'PreferDualStack' when multiple cluster IPs are specified"
        ],
    ),
    (
        ALLOC,
        "SingleStack with two families",
        spec(ipFamilyPolicy="SingleStack", ipFamilies=["IPv4", "IPv6"]),
        DUAL_STACK,
        [
            "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or "
            "'PreferDualStack' when multiple IP families are specified"
        ],
    ),
    (
        ALLOC,
        "no policy means SingleStack on create",
        spec(ipFamilies=["IPv4", "IPv6"]),
        DUAL_STACK,
        [
            "spec.ipFamilyPolicy: Invalid value: \"SingleStack\": must be 'RequireDualStack' or "
            "'PreferDualStack' when multiple IP families are specified"
        ],
    ),
    (
        ALLOC,
        "RequireDualStack on a single-stack cluster",
        spec(ipFamilyPolicy="RequireDualStack"),
        V4,
        [
            'spec.ipFamilyPolicy: Invalid value: "RequireDualStack": '
            "this cluster is not configured "
            "for dual-stack services"
        ],
    ),
    (
        ALLOC,
        "RequireDualStack on a dual-stack cluster",
        spec(ipFamilyPolicy="RequireDualStack"),
        DUAL_STACK,
        [],
    ),
    (
        ALLOC,
        "PreferDualStack on a single-stack cluster",
        spec(ipFamilyPolicy="PreferDualStack"),
        V4,
        [],
    ),
    (
        ALLOC,
        "a family the cluster does not serve",
        spec(ipFamilies=["IPv6"]),
        V4,
        ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    ),
    (
        ALLOC,
        "a cluster IP of a family the cluster does not serve",
        spec(clusterIP="2001:db8::10"),
        V4,
        [
            'spec.clusterIPs[0]: Invalid value: []string{"2001:db8::10"}: '
            "IPv6 is not configured on "
            "this cluster"
        ],
    ),
    (ALLOC, "an IPv6 cluster IP on an IPv6 cluster", spec(clusterIP="2001:db8::10"), ("IPv6",), []),
    (
        ALLOC,
        "headless without selector may ask for both families anywhere",
        both(
            spec(type="ClusterIP", clusterIP="None", selector=None), drop("externalTrafficPolicy")
        ),
        V4,
        [],
    ),
    (
        ALLOC,
        "clusterIPs without clusterIP is refused before anything else",
        both(spec(clusterIPs=["10.0.0.1"]), port0(name="HTTP")),
        V4,
        [
            'spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: '
            "must be empty when `clusterIP` is "
            "not specified"
        ],
    ),
    (
        ALLOC,
        "IP-family refusals come before node-port refusals",
        both(spec(ipFamilies=["IPv6"]), port0(nodePort=29999)),
        V4,
        ['spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster'],
    ),
    (
        ALLOC,
        "one nodePort for two port numbers across protocols",
        spec(ports=[port("tcp", 80, nodePort=30080), port("udp", 81, "UDP", nodePort=30080)]),
        V4,
        ["spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"],
    ),
    (
        ALLOC,
        "one nodePort for two port numbers, one protocol (allocation before the Duplicate check)",
        spec(ports=[port("a", 80, nodePort=30080), port("b", 81, nodePort=30080)]),
        V4,
        ["spec.ports[1].nodePort: Invalid value: 30080: provided port is already allocated"],
    ),
    (
        ALLOC,
        "TCP and UDP on one port number share a nodePort",
        spec(ports=[port("tcp", 53, nodePort=30053), port("udp", 53, "UDP", nodePort=30053)]),
        V4,
        [],
    ),
    (
        ALLOC,
        "a nodePort out of range ends the request before validation",
        both(port0(nodePort=29999), meta(name="Python")),
        V4,
        [f"spec.ports[0].nodePort: Invalid value: 29999: {RANGE_TEXT}"],
    ),
    (
        ALLOC,
        "a healthCheckNodePort that a nodePort took",
        both(port0(nodePort=30100), spec(healthCheckNodePort=30100)),
        V4,
        ["spec.healthCheckNodePort: Invalid value: 30100: provided port is already allocated"],
    ),
    (
        ALLOC,
        "explicit nodePorts are honoured only for NodePort and LoadBalancer",
        both(spec(type="ClusterIP"), drop("externalTrafficPolicy"), port0(nodePort=29999)),
        V4,
        ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"],
    ),
    (
        ALLOC,
        "port 10250 on a LoadBalancer (allowed since Kubernetes 1.33)",
        port0(port=10250),
        V4,
        [],
    ),
    (
        STRATEGY,
        "generateName alone: the prefix and the generated name are both checked",
        lambda s: s.update(metadata={"generateName": "Python-"}),
        V4,
        [
            'metadata.generateName: Invalid value: "Python-": '
            "a DNS-1035 label must consist of lower "
            "case alphanumeric characters or '-', start with an alphabetic character, "
            "and end with an "
            "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
            'metadata.name: Invalid value: "Python-xxxxx": a DNS-1035 label must consist of lower '
            "case alphanumeric characters or '-', start with an alphabetic character, "
            "and end with an "
            "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
            "'[a-z]([-a-z0-9]*[a-z0-9])?')",
        ],
    ),
    (
        STRATEGY,
        "generateName ending in a dash",
        lambda s: s.update(metadata={"generateName": "python-"}),
        V4,
        [],
    ),
    (
        STRATEGY,
        "ExternalName gets no IP families",
        both(
            spec(type="ExternalName", externalName="db.example.com."), drop("externalTrafficPolicy")
        ),
        V4,
        [],
    ),
    (DEFAULTS, 'type "" is ClusterIP', both(spec(type=""), drop("externalTrafficPolicy")), V4, []),
    (DEFAULTS, 'sessionAffinity "" is None', spec(sessionAffinity=""), V4, []),
    (DEFAULTS, 'protocol "" is TCP', port0(protocol=""), V4, []),
    (
        DEFAULTS,
        "sessionAffinityConfig is dropped when affinity is None",
        spec(sessionAffinity="None", sessionAffinityConfig={"clientIP": {"timeoutSeconds": 90000}}),
        V4,
        [],
    ),
    (
        DEFAULTS,
        "ClientIP without a timeout gets 10800",
        spec(sessionAffinity="ClientIP", sessionAffinityConfig={"clientIP": {}}),
        V4,
        [],
    ),
]


@pytest.mark.parametrize("case", CREATE_PATH_CASES, ids=lambda c: f"{c[0]}: {c[1]}")
def test_create_path(case: tuple[str, str, Tweak, tuple[str, ...], list[str]]) -> None:
    _, _, tweak, families, expected = case
    svc = python_lb()
    tweak(svc)
    errors = validate_service(apply_defaults(svc), NodePortRange(), ip_families=families)
    assert [str(e) for e in errors] == expected


def test_defaulting_fills_what_the_api_server_fills() -> None:
    svc = python_lb()
    svc["spec"].update(sessionAffinity="", type="LoadBalancer")
    svc["spec"]["ports"][0].update(protocol="", targetPort="")
    defaulted = apply_defaults(svc)["spec"]
    assert defaulted["sessionAffinity"] == "None"
    assert defaulted["ports"][0] == {
        "name": "http",
        "port": 80,
        "targetPort": 80,
        "protocol": "TCP",
    }
    assert defaulted["internalTrafficPolicy"] == "Cluster"
    assert defaulted["allocateLoadBalancerNodePorts"] is True
