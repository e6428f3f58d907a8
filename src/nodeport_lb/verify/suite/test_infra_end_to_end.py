"""End to end from a client: every VIP answers, the pod sees the client's own address where
the load balancers hand it on (as its TCP peer in transparent mode, as any plain application
sees it; in the PROXY header; in X-Forwarded-For), and nodes without pods take no traffic."""

from __future__ import annotations

from concurrent.futures import Future

from nodeport_lb.loadbalancer import HAProxyPlan
from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.expected import client_address_field, unserved_node_ports
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import Target, http_get, source_address, tcp_connects
from nodeport_lb.verify.report import fail_on


def test_each_vip_answers_and_the_pod_sees_the_client(client: Target, plan: HAProxyPlan) -> None:
    problems = []
    for listener in plan.listeners:
        where = f"{client.name}: {listener.bind} (Service {listener.service})"
        answer = http_get(client, listener.vip, listener.port)
        if not answer.ok:
            problems.append(f"{where} — expected an answer, found none ({answer.error})")
            continue
        field = client_address_field(listener)
        # Only a backend that reports what it saw (the echo pods do) can prove the hand-off.
        seen = (answer.json() or {}).get(field) if field else None
        if not field or seen is None:
            continue
        own = source_address(client, listener.vip)
        if seen != own:
            how = {
                "peer": "as its TCP peer, as a plain application sees it (transparent mode)",
                "client": "in the PROXY protocol header",
                "forwarded_for": "in X-Forwarded-For",
            }[field]
            problems.append(
                f"{where} — expected the pod to see the client's address {own} {how}, found {seen}"
            )
    fail_on(problems)


def test_nodes_without_pods_take_no_traffic(
    client: Target,
    inventory: Inventory,
    control_plane: ControlPlane,
    no_traffic_probes: dict[str, Future[set[tuple[str, int]]]],
) -> None:
    probes = unserved_node_ports(inventory, control_plane)
    started = no_traffic_probes.get(client.name)
    connected = started.result() if started else tcp_connects(client, sorted(probes))
    fail_on(
        [
            f"{client.name}: {address}:{port} on {probes[(address, port)]} — expected no "
            "answer (eTP Local, no ready local endpoint), found a connection"
            for address, port in sorted(connected)
        ]
    )
