"""Where an eTP Local Service's ready pods run, and what to add so they spread.

With externalTrafficPolicy: Local only nodes with a ready pod take traffic, and a load balancer
that cannot weigh nodes splits it per node, not per pod: 6 pods on one node and 2 on another
give each of the 2 three times the load of each of the 6; all pods on one node lose the Service
with that node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodeport_lb.doctor.context import ServiceContext, Workload
from nodeport_lb.doctor.findings import WARNING, Finding

HOSTNAME_KEY = "kubernetes.io/hostname"


def spreads_by_hostname(pod_spec: Mapping[str, Any]) -> bool:
    """podAntiAffinity (required or preferred) or a topologySpreadConstraint on the hostname."""
    anti = ((pod_spec.get("affinity") or {}).get("podAntiAffinity")) or {}
    terms = list(anti.get("requiredDuringSchedulingIgnoredDuringExecution") or [])
    terms += [
        (t or {}).get("podAffinityTerm") or {}
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution") or []
    ]
    if any((t or {}).get("topologyKey") == HOSTNAME_KEY for t in terms):
        return True
    return any(
        (c or {}).get("topologyKey") == HOSTNAME_KEY
        for c in pod_spec.get("topologySpreadConstraints") or []
    )


def anti_affinity_stanza(labels: Mapping[str, str]) -> dict[str, Any]:
    """The preferred podAntiAffinity on the hostname for pods with these labels."""
    return {
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {
                                "matchExpressions": [
                                    {"key": key, "operator": "In", "values": [value]}
                                    for key, value in sorted(labels.items())
                                ]
                            },
                            "topologyKey": HOSTNAME_KEY,
                        },
                    }
                ]
            }
        }
    }


def template_patch(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": anti_affinity_stanza(labels)}}}


def _per_node(ready: Mapping[str, int]) -> str:
    return ", ".join(f"{count} on {node}" for node, count in ready.items())


def spread_findings(
    context: ServiceContext,
    workloads: list[Workload],
    known_nodes: int | None,
    uneven_ratio: float,
    weighted: bool,
) -> list[Finding]:
    ready = context.ready_by_node
    if not ready:
        return []
    single = len(ready) == 1 and (known_nodes is None or known_nodes > 1)
    busiest, quietest = max(ready.values()), min(ready.values())
    uneven = len(ready) > 1 and not weighted and busiest > uneven_ratio * quietest
    if not single and not uneven:
        return []
    unspread = [w for w in workloads if not spreads_by_hostname(w.pod_spec)]
    owned = [w for w in unspread if w.ref[0] != "Pod"]
    if single:
        node = next(iter(ready))
        message = (
            f"all {busiest} ready endpoint(s) run on {node}: with externalTrafficPolicy: Local "
            f"no other node forwards, so the Service answers nowhere while {node} is down or "
            "drains"
        )
        check = "single-node"
    else:
        message = (
            f"ready pods per node are uneven ({_per_node(ready)}) and the load balancer in front "
            f"splits traffic per node, not per pod: each pod on the quietest node takes "
            f"{busiest / quietest:.1f}x the load of one on the busiest"
        )
        check = "uneven-pods"
    patch = None
    if owned:
        fix = "spread the pods: " + "; ".join(_workload_fix(w) for w in workloads)
    elif unspread or not workloads:
        # bare pods, or pods the snapshot does not hold (only their EndpointSlices)
        labels = dict(context.service.selector)
        fix = (
            "run the pods from a Deployment (replicas: 2 or more) whose pod template carries "
            f"{_labels(labels)} and this podAntiAffinity on {HOSTNAME_KEY}"
        )
        patch = template_patch(labels)
    else:
        fix = "; ".join(_workload_fix(w) for w in workloads) or "run more than one ready pod"
    if uneven:
        fix += (
            "; or let the load balancer weigh nodes by their local pods (nodeport-lb's "
            "HAProxy agent-check, GKE's networking.gke.io/weighted-load-balancing: pods-per-node)"
        )
    findings = [Finding(WARNING, context.label, check, message, fix, patch)]
    for workload in owned:
        findings.append(
            Finding(
                WARNING,
                workload.label,
                "no-spread",
                f"has no podAntiAffinity or topologySpreadConstraints on {HOSTNAME_KEY}, so the "
                f"scheduler may pack its pods on few nodes ({context.label} has "
                f"externalTrafficPolicy: Local: {_per_node(ready)})",
                f"merge this into it (kubectl patch {workload.ref[0].lower()} {workload.ref[2]} "
                f"-n {workload.ref[1]} --type merge -p ...)",
                template_patch(workload.pod_labels),
            )
        )
    return findings


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "the Service's selector"


def _workload_fix(workload: Workload) -> str:
    if workload.ref[0] == "Pod":
        return f"Pod {workload.ref[1]}/{workload.ref[2]} has no owner: run it from a Deployment"
    if workload.replicas is not None and workload.replicas < 2:
        return f"{workload.label} runs {workload.replicas} replica: scale it to 2 or more"
    if spreads_by_hostname(workload.pod_spec):
        return (
            f"{workload.label} asks for spreading already but the scheduler could not honour it: "
            "use a topologySpreadConstraint with whenUnsatisfiable: DoNotSchedule, or add nodes"
        )
    return f"add a podAntiAffinity on {HOSTNAME_KEY} to {workload.label} (stanza in its finding)"
