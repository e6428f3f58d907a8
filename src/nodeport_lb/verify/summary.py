"""`nodeport-lb summary`: what a user wants to see after `make demo` — the VIP and who holds
it, which nodes HAProxy has UP and DOWN, and one request through the VIP with the client
address the pod saw. Same probes as the verification, printed instead of judged."""

from __future__ import annotations

from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.expected import expected_plan
from nodeport_lb.verify.haproxy import is_up
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import (
    haproxy_runtime,
    http_get,
    local_addresses,
    node_dataplane,
    source_address,
    target,
)


def summary_lines(inventory_source: str) -> list[str]:
    inventory = Inventory.load([inventory_source])
    plane = ControlPlane.load(inventory.var("nodeport_lb_store"))
    plan = expected_plan(inventory, plane)
    lbs = [target(inventory, name) for name in inventory.hosts("lbs")]
    clients = inventory.hosts("clients") or ["localhost"]
    client = target(inventory, clients[0])
    holders = {lb.name: local_addresses(lb) for lb in lbs}
    lines = []
    for name in inventory.hosts("nodes"):
        lines.append(
            f"{name}: nodePorts served by {node_dataplane(target(inventory, name)).describe()}"
        )
    for vip in plan.vips:
        on = [name for name, addresses in holders.items() if vip in addresses] or ["no host"]
        lines.append(f"VIP {vip} is on {', '.join(on)}")
    master = next((lb for lb in lbs if set(plan.vips) & holders[lb.name]), lbs[0] if lbs else None)
    stats = haproxy_runtime(master)[0] if master else {}
    for listener in plan.listeners:
        rows = {s.name: stats.get((listener.name, s.name), {}) for s in listener.servers}
        up = [n for n, row in rows.items() if is_up(row.get("status", ""))]
        # plain DOWN needs no comment; MAINT, "DOWN (agent)" and the like say why
        down = [
            n if row.get("status") == "DOWN" else f"{n} ({row.get('status', 'missing')})"
            for n, row in rows.items()
            if n not in up
        ]
        where = master.name if master else "no load balancer"
        lines.append(
            f"{listener.service} on {listener.bind}, HAProxy on {where}: "
            f"UP {', '.join(up) or '-'}; DOWN {', '.join(down) or '-'}"
        )
        answer = http_get(client, listener.vip, listener.port)
        source = source_address(client, listener.vip)
        if not answer.ok:
            lines.append(f"  curl from {client.name} ({source}): no answer ({answer.error})")
            continue
        body = answer.json() or {}
        seen = (
            f"pod {body.get('pod')} on {body.get('node')} saw client {body.get('client')} "
            f"(TCP peer {body.get('peer')})"
            if "client" in body
            else f"HTTP {answer.status}, {len(answer.body)} bytes"
        )
        lines.append(f"  curl http://{listener.bind}/ from {client.name} ({source}): {seen}")
    return lines
