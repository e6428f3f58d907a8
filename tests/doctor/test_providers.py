"""What each cloud controller checks for an eTP Local LoadBalancer, from its annotations."""

from __future__ import annotations

import pytest

from nodeport_lb.doctor import diagnose, read_manifests
from nodeport_lb.doctor.spread import anti_affinity_stanza

from .objects import deployment, endpoint_slice, node, pods, service

EXO = "service.beta.kubernetes.io/exoscale-loadbalancer-"
AWS = "service.beta.kubernetes.io/aws-load-balancer-"
DO = "service.beta.kubernetes.io/do-loadbalancer-"
HZ = "load-balancer.hetzner.cloud/"
LN = "service.beta.kubernetes.io/linode-loadbalancer-"
OCI = "service.beta.kubernetes.io/oci-load-balancer-"
AZ = "service.beta.kubernetes.io/"

CASES = [
    # (annotations, provider IDs of the nodes, expected checks)
    ({f"{EXO}name": "web"}, "", ["tcp-health-check"]),
    ({f"{EXO}service-healthcheck-mode": "tcp"}, "", ["tcp-health-check"]),
    ({f"{EXO}service-healthcheck-mode": "https"}, "", ["health-check-protocol"]),
    ({f"{EXO}service-healthcheck-mode": "http"}, "", []),
    (
        {f"{EXO}service-healthcheck-mode": "http", f"{EXO}service-healthcheck-port": "31001"},
        "",
        ["health-check-port"],
    ),
    (
        {f"{EXO}service-healthcheck-mode": "http", f"{EXO}service-healthcheck-interval": "soon"},
        "",
        ["invalid-annotation"],
    ),
    ({}, "exoscale://4d1f", ["tcp-health-check"]),  # no annotation at all: the Nodes say Exoscale
    ({f"{AWS}healthcheck-protocol": "TCP"}, "", ["tcp-health-check"]),
    ({f"{AWS}healthcheck-port": "traffic-port"}, "", ["health-check-port"]),
    ({f"{AWS}type": "nlb"}, "", []),
    ({}, "aws:///eu-west-1a/i-0abc", []),
    (
        {f"{DO}override-health-check": "", f"{DO}healthcheck-protocol": "tcp"},
        "",
        ["health-check-port"],
    ),
    ({f"{DO}healthcheck-protocol": "tcp"}, "", []),  # ignored without override-health-check
    ({f"{HZ}location": "fsn1"}, "", ["health-check-port"]),
    ({f"{HZ}health-check-port": "31897"}, "", ["tcp-health-check"]),
    ({f"{HZ}health-check-port": "31897", f"{HZ}health-check-protocol": "http"}, "", []),
    ({f"{LN}check-type": "none"}, "", ["no-health-check"]),
    ({f"{LN}check-type": "connection"}, "", []),
    ({f"{OCI}shape": "flexible"}, "", []),
    ({f"{AZ}azure-load-balancer-internal": "true"}, "", []),
    ({f"{AZ}port_80_health-probe_port": "80"}, "", ["health-check-port"]),
    ({f"{AZ}port_80_health-probe_port": "31897"}, "", ["tcp-health-check"]),
    ({f"{AZ}port_80_no_probe_rule": "true"}, "", ["no-health-check"]),
    ({}, "", []),  # no provider known: nothing to say about its check
]


@pytest.mark.parametrize(("annotations", "provider_id", "expected"), CASES)
def test_provider_health_check(store, annotations, provider_id, expected) -> None:
    svc = service("web", annotations=annotations)
    # a long grace: only the check itself is judged here
    spread = {**anti_affinity_stanza({"app": "web"}), "terminationGracePeriodSeconds": 300}
    running = pods("web-5d4f8", {"node1": 1, "node2": 1}, labels={"app": "web"}, pod_spec=spread)
    nodes = [node(n, provider_id=provider_id) for n in ("node1", "node2")]
    objects = [
        svc,
        *deployment("web", 2, pod_spec=spread),
        *running,
        endpoint_slice(svc, running),
        *nodes,
    ]
    found = diagnose(read_manifests(store(objects)))
    assert [f.check for f in found] == expected, [f.line() for f in found]


def test_a_load_balancer_class_hands_the_service_to_another_controller(store) -> None:
    svc = service("web", annotations={f"{EXO}service-healthcheck-mode": "tcp"})
    assert [f.check for f in diagnose(read_manifests(store([svc], "cloud")))] == [
        "tcp-health-check"
    ]
    svc["spec"]["loadBalancerClass"] = "example.com/other"
    assert diagnose(read_manifests(store([svc], "class"))) == []


def test_the_fix_names_the_provider_annotation(store) -> None:
    svc = service("web", annotations={f"{AWS}healthcheck-protocol": "TCP"})
    [finding] = diagnose(read_manifests(store([svc])))
    assert finding.fix.startswith(f"remove {AWS}healthcheck-protocol")
    assert finding.patch == {"metadata": {"annotations": {f"{AWS}healthcheck-protocol": None}}}


@pytest.mark.parametrize(
    ("annotations", "detection"),
    [
        ({f"{AWS}internal": "true"}, 60),
        ({f"{AWS}type": "nlb"}, 20),
        ({f"{AWS}healthcheck-interval": "5"}, 30),
    ],
)
def test_aws_detection_time_against_the_default_grace(store, annotations, detection) -> None:
    """Classic ELB: 10s x 6 unhealthy checks; NLB for eTP Local: 10s x 2."""
    svc = service("web", annotations=annotations)
    spread = anti_affinity_stanza({"app": "web"})
    running = pods("web-5d4f8", {"node1": 1, "node2": 1}, labels={"app": "web"}, pod_spec=spread)
    objects = [svc, *deployment("web", 2, pod_spec=spread), *running, endpoint_slice(svc, running)]
    found = diagnose(read_manifests(store(objects)))
    if detection <= 30:
        assert found == []
    else:
        [finding] = found
        assert finding.check == "termination-grace"
        assert f"needs {detection}s" in finding.message
