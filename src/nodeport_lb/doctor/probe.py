"""Ask each node's healthCheckNodePort what it says, and compare with the EndpointSlices.

kube-proxy (or the nodeport-lb agent) answers any path: 200 with ``"localEndpoints": N`` where
the node has N ready local endpoints, 503 with 0 elsewhere. A node that answers otherwise sends
its load balancer the wrong way. http.client is enough for one GET per node and port.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nodeport_lb.defaults import PROXY_HEALTHZ_PORT
from nodeport_lb.doctor.context import ServiceContext
from nodeport_lb.doctor.findings import ERROR, WARNING, Finding


@dataclass(frozen=True)
class HcnpAnswer:
    status: int | None  # None: no answer
    local_endpoints: int | None
    error: str = ""


def ask(address: str, port: int, timeout: float) -> HcnpAnswer:
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        body = response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return HcnpAnswer(None, None, str(exc) or type(exc).__name__)
    finally:
        connection.close()
    try:
        count = json.loads(body).get("localEndpoints")
    except (ValueError, AttributeError):
        count = None
    return HcnpAnswer(response.status, count if isinstance(count, int) else None)


def node_addresses(nodes: Sequence[Mapping[str, Any]], given: Mapping[str, str]) -> dict[str, str]:
    """Each node's InternalIP (else ExternalIP) from its Node object; ``given`` wins."""
    found: dict[str, str] = {}
    for node in nodes:
        name = (node.get("metadata") or {}).get("name")
        addresses = (node.get("status") or {}).get("addresses") or []
        by_type = {a.get("type"): a.get("address") for a in addresses if isinstance(a, Mapping)}
        address = by_type.get("InternalIP") or by_type.get("ExternalIP")
        if name and address:
            found[str(name)] = str(address)
    found.update(given)
    return dict(sorted(found.items()))


def probe_findings(
    context: ServiceContext, addresses: Mapping[str, str], timeout: float
) -> list[Finding]:
    hcnp = context.service.health_check_node_port
    if not hcnp:
        return []
    findings = []
    for node, address in addresses.items():
        expected = context.ready_by_node.get(node, 0)
        answer = ask(address, hcnp, timeout)
        label = f"Node {node}"
        if answer.status is None:
            findings.append(
                Finding(
                    WARNING,
                    label,
                    "hcnp-unreachable",
                    f"{address}:{hcnp} (the healthCheckNodePort of {context.label}) did not "
                    f"answer: {answer.error}",
                    "check that kube-proxy (or the nodeport-lb agent) runs on the node and "
                    "that nothing filters the port from here",
                )
            )
            continue
        wanted_status = 200 if expected else 503
        if answer.status == wanted_status and answer.local_endpoints == expected:
            continue
        findings.append(
            Finding(
                ERROR,
                label,
                "hcnp-disagrees",
                f"answers {answer.status} with localEndpoints {answer.local_endpoints} on "
                f"{address}:{hcnp} (the healthCheckNodePort of {context.label}), but the "
                f"EndpointSlices list {expected} ready endpoint(s) on {node}",
                f"look at kube-proxy (or the nodeport-lb agent) on {node}: its /healthz on "
                f":{PROXY_HEALTHZ_PORT} and its log; the load balancer follows this wrong answer",
            )
        )
    return findings
