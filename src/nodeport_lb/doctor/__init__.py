"""nodeport-lb doctor: find the mistakes that break externalTrafficPolicy: Local in a cluster
nodeport-lb did not build — a TCP health check on the healthCheckNodePort, pods packed on one
node, client addresses lost to SNAT, pods that exit before the load balancer notices."""

from nodeport_lb.doctor.diagnose import DoctorOptions, FrontingLoadBalancer, diagnose
from nodeport_lb.doctor.findings import Finding, render_json, render_text
from nodeport_lb.doctor.snapshot import (
    ClusterSnapshot,
    SourceUnreadable,
    read_kubernetes,
    read_manifests,
    read_source,
)

__all__ = [
    "ClusterSnapshot",
    "DoctorOptions",
    "Finding",
    "FrontingLoadBalancer",
    "SourceUnreadable",
    "diagnose",
    "read_kubernetes",
    "read_manifests",
    "read_source",
    "render_json",
    "render_text",
]
