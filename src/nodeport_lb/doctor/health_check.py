"""Judge the health check a cloud's controller builds for an eTP Local LoadBalancer Service."""

from __future__ import annotations

from typing import Any

from nodeport_lb.doctor.findings import ERROR, WARNING, Finding
from nodeport_lb.doctor.providers import HealthCheckPlan

ALWAYS_PASSES = (
    "the port is open on every node, so the check always passes and nodes without a ready pod "
    "get traffic they drop"
)


def annotation_patch(plan: HealthCheckPlan) -> dict[str, Any] | None:
    """A JSON merge patch (``kubectl patch --type merge``): null removes an annotation."""
    changes: dict[str, Any] = dict(plan.set_annotations)
    changes.update(dict.fromkeys(plan.remove_annotations))
    return {"metadata": {"annotations": changes}} if changes else None


def judge_plan(label: str, plan: HealthCheckPlan) -> list[Finding]:
    where = f" ({plan.where})" if plan.where else ""
    findings = [
        Finding(
            ERROR,
            label,
            "invalid-annotation",
            f"{plan.provider} refuses {problem}",
            "correct the value (the controller does not update the load balancer meanwhile)",
        )
        for problem in plan.invalid
    ]
    said = f"{plan.provider}'s load balancer checks {plan.target}{where}"
    patch = annotation_patch(plan)
    if plan.protocol == "none":
        message = (
            f"{plan.provider}'s load balancer runs no health check{where}: every node gets "
            "traffic and nodes without a ready pod drop it"
        )
        findings.append(Finding(ERROR, label, "no-health-check", message, plan.fix, patch))
    elif plan.on_hcnp and plan.protocol == "tcp":
        findings.append(
            Finding(
                ERROR,
                label,
                "tcp-health-check",
                f"{said} over TCP: {ALWAYS_PASSES}",
                plan.fix,
                patch,
            )
        )
    elif plan.on_hcnp and plan.protocol not in ("http",):
        message = (
            f"{said} over {plan.protocol.upper()}: kube-proxy answers plain HTTP there, so "
            "every node fails the check"
        )
        findings.append(Finding(ERROR, label, "health-check-protocol", message, plan.fix, patch))
    elif not plan.on_hcnp and plan.can_target_hcnp:
        message = (
            f"{said} over {plan.protocol.upper()}, not the healthCheckNodePort: nodes that drain "
            "(the hcnp says 503 while their pods terminate) or whose kube-proxy is unhealthy "
            "keep getting new connections"
        )
        findings.append(Finding(WARNING, label, "health-check-port", message, plan.fix, patch))
    return findings
