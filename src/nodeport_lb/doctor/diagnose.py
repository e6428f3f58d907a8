"""Run every check on a snapshot and return the findings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodeport_lb.doctor.client_address import client_address_findings
from nodeport_lb.doctor.context import (
    ServiceContext,
    SnapshotIndex,
    service_context,
    workloads_of,
)
from nodeport_lb.doctor.findings import ERROR, Finding, sort_findings
from nodeport_lb.doctor.health_check import judge_plan
from nodeport_lb.doctor.probe import node_addresses, probe_findings
from nodeport_lb.doctor.providers import cloud_weights_by_pods, detection_seconds, provider_for
from nodeport_lb.doctor.snapshot import ClusterSnapshot
from nodeport_lb.doctor.spread import spread_findings
from nodeport_lb.doctor.termination import termination_findings
from nodeport_lb.model import NodePortRange, Service, apply_defaults
from nodeport_lb.validation import validate_service

# 6 pods on one node and 2 on another is uneven: beyond twice the quietest node's pods, the
# per-pod load differs by more than 2x.
DEFAULT_UNEVEN_RATIO = 2.0
# Any nodePort a cluster may use: doctor judges Services, not the API server's port range.
_ANY_NODE_PORT = NodePortRange(1, 65535)


@dataclass(frozen=True)
class FrontingLoadBalancer:
    """A load balancer in front of a Service that no cloud controller builds (nodeport-lb's
    HAProxy, or another): how fast it notices a node, and whether it weighs nodes by pods."""

    name: str = "the load balancer in front"
    interval: float | None = None  # seconds; None: unknown
    fall: int | None = None
    weights_by_pods: bool = False

    @property
    def detection_seconds(self) -> float | None:
        return detection_seconds(self.interval, self.fall)


@dataclass(frozen=True)
class DoctorOptions:
    uneven_ratio: float = DEFAULT_UNEVEN_RATIO
    front: FrontingLoadBalancer = FrontingLoadBalancer()
    # per Service ("namespace/name"), when the caller knows better (the Ansible role does)
    fronts: Mapping[str, FrontingLoadBalancer] = field(default_factory=dict)
    probe: bool = False
    node_addresses: Mapping[str, str] = field(default_factory=dict)
    probe_timeout: float = 2.0
    only: frozenset[str] | None = None  # only these Services ("namespace/name")


def diagnose(snapshot: ClusterSnapshot, options: DoctorOptions | None = None) -> list[Finding]:
    options = options or DoctorOptions()
    findings = [
        Finding(
            ERROR,
            problem.split(": ", 1)[0],
            "unreadable-object",
            problem.split(": ", 1)[-1],
            "fix or remove it: doctor judged everything else without it",
        )
        for problem in (snapshot.set_aside if options.only is None else [])
    ]
    addresses = node_addresses(snapshot.nodes, options.node_addresses) if options.probe else {}
    index = SnapshotIndex.build(snapshot)
    for manifest in snapshot.services:
        service, problems = _service(manifest)
        if service is None:
            findings += problems
            continue
        if options.only is not None and service.key not in options.only:
            continue
        try:
            findings += service_findings(snapshot, index, service, options, addresses)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            # an object around this Service has a shape doctor did not foresee: report it
            # alone and judge the other Services
            findings.append(
                Finding(
                    ERROR,
                    f"Service {service.key}",
                    "unreadable-object",
                    f"could not be judged: {type(exc).__name__}: {exc}",
                    "look for a malformed object among its EndpointSlices, pods and workloads",
                )
            )
    return sort_findings(findings)


def _service(manifest: dict) -> tuple[Service | None, list[Finding]]:
    meta = manifest.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    label = f"Service {meta.get('namespace') or 'default'}/{meta.get('name')}"
    errors = validate_service(apply_defaults(manifest), _ANY_NODE_PORT)
    if errors:
        return None, [
            Finding(
                ERROR,
                label,
                "invalid-service",
                f"the API server would refuse it: {error}",
                "correct the field",
            )
            for error in errors
        ]
    return Service.from_manifest(manifest), []


def service_findings(
    snapshot: ClusterSnapshot,
    index: SnapshotIndex,
    service: Service,
    options: DoctorOptions,
    addresses: Mapping[str, str],
) -> list[Finding]:
    if service.type not in ("NodePort", "LoadBalancer"):
        return []
    context = service_context(index, service)
    if not service.is_local:
        return client_address_findings(context, snapshot.config_maps)
    findings: list[Finding] = []
    front = options.fronts.get(service.key, options.front)
    weighted = front.weights_by_pods or cloud_weights_by_pods(service)
    detector, detection = front.name, front.detection_seconds
    if service.type == "LoadBalancer":
        provider = provider_for(service, snapshot.nodes)
        plans = provider.plans(service) if provider else []
        for plan in plans:
            findings += judge_plan(context.label, plan)
        known = [p.detection_seconds for p in plans if p.detection_seconds is not None]
        if known:
            detector = f"{plans[0].provider}'s health check"
            detection = max(known)
    workloads = workloads_of(snapshot, context.pods)
    schedulable = [n for n in snapshot.nodes if not (n.get("spec") or {}).get("unschedulable")]
    known_nodes = len(schedulable) if snapshot.nodes else None
    findings += spread_findings(context, workloads, known_nodes, options.uneven_ratio, weighted)
    if detection is not None:
        findings += termination_findings(context, workloads, detector, detection)
    if options.probe and service.needs_health_check:
        findings += probe_findings(context, addresses, options.probe_timeout)
    return findings


__all__ = ["DoctorOptions", "FrontingLoadBalancer", "ServiceContext", "diagnose"]
