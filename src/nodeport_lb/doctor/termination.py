"""Pods that exit before the load balancer notices their node has none left.

When the last ready pod on a node starts terminating, the hcnp turns 503 at once, yet the load
balancer keeps sending new connections there until its check fails ``fall`` times, ``interval``
apart. kube-proxy forwards those to the terminating pod while it still serves; once the pod has
exited (terminationGracePeriodSeconds at most) they are dropped.
"""

from __future__ import annotations

import math

from nodeport_lb.doctor.context import ServiceContext, Workload, termination_grace
from nodeport_lb.doctor.findings import WARNING, Finding


def termination_findings(
    context: ServiceContext, workloads: list[Workload], detector: str, detection: float
) -> list[Finding]:
    findings = []
    for workload in workloads:
        grace = termination_grace(workload)
        if grace >= detection:
            continue
        wanted = math.ceil(detection) + 5  # a margin over the detection time for the last check
        where = "spec.terminationGracePeriodSeconds" + (
            "" if workload.ref[0] == "Pod" else " of the pod template"
        )
        patch = (
            {"spec": {"terminationGracePeriodSeconds": wanted}}
            if workload.ref[0] == "Pod"
            else {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": wanted}}}}
        )
        findings.append(
            Finding(
                WARNING,
                workload.label,
                "termination-grace",
                f"its pods get {grace}s to finish once they terminate, but {detector} needs "
                f"{detection:g}s to stop sending new connections to a node whose last pod "
                f"terminates ({context.label}): connections arriving after the pod exits are "
                "dropped",
                f"raise {where} to {wanted} or more and keep serving until then (a preStop "
                "sleep), or shorten the check (interval x fall)",
                patch,
            )
        )
    return findings
