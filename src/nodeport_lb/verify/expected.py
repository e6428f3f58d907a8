"""What the load balancers should run now: the HAProxy plan computed from the inventory's
Services as the control plane has them *now* (live nodePorts and healthCheckNodePort).

It is the same ``plan_haproxy`` the haproxy role renders from, fed with live values instead
of the ones the last playbook run saw, so a Service recreated since (new hcnp) shows up as a
stale check on the load balancers.
"""

from __future__ import annotations

from collections.abc import Mapping

from nodeport_lb.loadbalancer import HAProxyPlan, Listener, plan_haproxy
from nodeport_lb.model import Service
from nodeport_lb.services import AppliedService
from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.inventory import Inventory


class ExpectationError(RuntimeError):
    """The inventory and the control plane disagree before any host is looked at."""


def applied_services(inventory: Inventory, plane: ControlPlane) -> list[AppliedService]:
    """The inventory's ``nodeport_lb_services`` with their Services as the control plane has
    them now: what the Services role publishes (``nodeport_lb_applied_services``)."""
    applied = []
    for item in inventory.var("nodeport_lb_services") or []:
        if not isinstance(item, Mapping) or item.get("state", "present") == "absent":
            continue
        key = f"{item.get('namespace') or 'default'}/{item['name']}"
        service = plane.service(key)
        if service is None:
            raise ExpectationError(
                f"Service {key} is in nodeport_lb_services but not in the {plane.source}: "
                "run site.yml (tag services) first"
            )
        applied.append(AppliedService(service, item.get("load_balancer")))
    return applied


def expected_plan(inventory: Inventory, plane: ControlPlane) -> HAProxyPlan:
    return plan_haproxy(
        applied_services(inventory, plane),
        inventory.node_list(),
        inventory.var("nodeport_lb_vips"),
    )


def local_listeners(plan: HAProxyPlan, plane: ControlPlane) -> list[tuple[Listener, Service]]:
    """Listeners of eTP Local Services, each with its Service as the control plane has it now:
    the ones whose checks must be HTTP on the hcnp."""
    result = []
    for listener in plan.listeners:
        service = plane.service(listener.service)
        if service is not None and service.is_local:
            result.append((listener, service))
    return result


# Where the echo pods report the client's address for each client_address mode: the TCP
# peer (what any application sees, the plain ones included), the PROXY header's source, the
# X-Forwarded-For header. "none" hands nothing on.
CLIENT_ADDRESS_SEEN_AS = {
    "transparent": "peer",
    "proxy-v2": "client",
    "proxy-v1": "client",
    "forwardfor": "forwarded_for",
}


def client_address_field(listener: Listener) -> str | None:
    """The echo answer's field that must hold the client's own address (None: not handed on)."""
    return CLIENT_ADDRESS_SEEN_AS.get(listener.client_address)


def unserved_node_ports(inventory: Inventory, plane: ControlPlane) -> dict[tuple[str, int], str]:
    """(node address, nodePort) -> "host (Service ns/name)" for every TCP nodePort of an eTP
    Local Service on a node without a ready local endpoint: none of them may take a connection."""
    nodes = inventory.addresses("nodes")
    probes: dict[tuple[str, int], str] = {}
    for item in inventory.var("nodeport_lb_services") or []:
        key = f"{item.get('namespace') or 'default'}/{item['name']}"
        service = plane.service(key)
        if service is None or not service.is_local:
            continue
        for host, address in nodes.items():
            if plane.local_ready(service, inventory.node_name(host)):
                continue
            for port in service.ports:
                if port.node_port and port.protocol == "TCP":
                    probes[(address, port.node_port)] = f"{host} (Service {key})"
    return probes
