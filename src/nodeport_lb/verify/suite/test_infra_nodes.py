"""Nodes: the agent runs in the mode the node needs, the node's dataplane is the one that mode
says (the agent's table when standalone, kube-proxy's when companion), every hcnp says what the
EndpointSlices say whoever serves it, the agent's agent-check weighs the node by its pods, and
(transparent mode) replies find their way back through each load balancer."""

from __future__ import annotations

import json
import re

import pytest

from nodeport_lb.agent.return_path import MARK_MASK
from nodeport_lb.agent.return_path import TABLE as RETURN_PATH_TABLE
from nodeport_lb.loadbalancer import HAProxyPlan
from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import (
    AGENT_UNIT,
    NodeDataplane,
    Target,
    agent_check,
    http_get,
    node_dataplane,
    run,
)
from nodeport_lb.verify.report import fail_on


@pytest.fixture(scope="session")
def dataplanes() -> dict[str, NodeDataplane]:
    return {}  # filled as nodes are asked: once per node and run


def dataplane(node: Target, dataplanes: dict[str, NodeDataplane]) -> NodeDataplane:
    if node.name not in dataplanes:
        dataplanes[node.name] = node_dataplane(node)
    return dataplanes[node.name]


def test_agent_is_running_and_enabled(node: Target) -> None:
    service = node.host.service(AGENT_UNIT)
    running, enabled = service.is_running, service.is_enabled
    if not (running and enabled):
        found = f"{'running' if running else 'not running'}, {'enabled' if enabled else 'disabled'}"
        fail_on([f"{node.name}: {AGENT_UNIT} — expected running and enabled, found {found}"])


def test_one_dataplane_serves_the_node_ports(
    node: Target, dataplanes: dict[str, NodeDataplane]
) -> None:
    """Standalone: the agent's table and no kube-proxy. Companion: kube-proxy, and no table of
    the agent's (two dataplanes would fight over the same nodePorts)."""
    found = dataplane(node, dataplanes)
    problems = []
    if found.agent_mode == "standalone":
        if not found.agent_table:
            problems.append(
                f"{node.name}: nftables table inet nodeport-lb — expected present (agent in "
                "standalone mode), found absent"
            )
        if found.kube_proxy:
            problems.append(
                f"{node.name}: dataplane — expected the agent alone (standalone mode), found "
                f"kube-proxy ({found.kube_proxy}) too: run the agent in companion mode"
            )
    elif found.agent_mode == "companion":
        if found.agent_table:
            problems.append(
                f"{node.name}: nftables table inet nodeport-lb — expected absent (agent in "
                "companion mode, kube-proxy serves the nodePorts), found present"
            )
        if not found.kube_proxy:
            problems.append(
                f"{node.name}: dataplane — expected kube-proxy beside the companion agent, found "
                "none (no table ip kube-proxy, KUBE-NODEPORTS or kube-ipvs0): nothing serves "
                "the nodePorts"
            )
    else:
        problems.append(f"{node.name}: {AGENT_UNIT} — expected installed, found no agent unit")
    fail_on(problems)


def test_hcnp_answers_as_the_endpoint_slices_say(
    node: Target,
    inventory: Inventory,
    control_plane: ControlPlane,
    dataplanes: dict[str, NodeDataplane],
) -> None:
    problems = []
    name = inventory.node_name(node.name)
    server = "kube-proxy" if dataplane(node, dataplanes).agent_mode == "companion" else "the agent"
    for key in sorted(control_plane.manifests):
        service = control_plane.service(key)
        if service is None or not service.needs_health_check or not service.health_check_node_port:
            continue
        hcnp = service.health_check_node_port
        ready = control_plane.local_ready(service, name)
        expected = f"200 with localEndpoints {ready}" if ready else "503 (no ready local endpoint)"
        answer = http_get(node, node.address, hcnp)
        body = answer.json() or {}
        if not answer.ok:
            found = f"no answer ({answer.error})"
        elif (answer.status, body.get("localEndpoints")) == ((200, ready) if ready else (503, 0)):
            continue
        else:
            found = f"{answer.status} with localEndpoints {body.get('localEndpoints')}"
        problems.append(
            f"{node.name}: hcnp {hcnp} of Service {key} — expected {expected} (EndpointSlices "
            f"in the {control_plane.source}), found {found} from {server}"
        )
    fail_on(problems)


def test_agent_check_weighs_the_node_by_its_ready_pods(
    node: Target, inventory: Inventory, control_plane: ControlPlane, plan: HAProxyPlan
) -> None:
    """What HAProxy's agent-check hears: "up N00%" for N ready local endpoints, else down."""
    checked: dict[str, int] = {}
    for listener in plan.listeners:
        for server in listener.servers:
            if server.agent_check and server.agent_port:
                checked[listener.service] = server.agent_port
    if not checked:
        pytest.skip("no backend uses the agent-check")
    problems = []
    name = inventory.node_name(node.name)
    for key, port in sorted(checked.items()):
        service = control_plane.service(key)
        if service is None:
            continue
        ready = control_plane.local_ready(service, name)
        try:
            answer = agent_check(node, port, key)
        except ConnectionError as error:
            answer = f"no answer ({error})"
        words = answer.split()
        if words[:1] == ["drain"]:
            continue  # the node is being drained: right whatever its pods
        if words[:2] == ["up", f"{ready * 100}%"] if ready else words[:1] == ["down"]:
            continue
        expected = f"up {ready * 100}%" if ready else "down (no ready local endpoint)"
        problems.append(
            f"{node.name}: agent-check {port} of Service {key} — expected {expected} "
            f"(EndpointSlices in the {control_plane.source}), found {answer!r}"
        )
    fail_on(problems)


def test_return_path_routes_replies_back_through_each_lb(
    node: Target, lbs: list[Target], lb_macs: dict[str, str], plan: HAProxyPlan
) -> None:
    """Transparent mode: every load balancer has its mark (from its link-layer address) and
    its routing table (default via it) on every node, ahead of any failover."""
    if not plan.transparent:
        pytest.skip("no Service uses client_address: transparent")
    rc, table, err = run(node, f"nft list table {RETURN_PATH_TABLE}")
    if rc != 0:
        fail_on(
            [
                f"{node.name}: nftables table {RETURN_PATH_TABLE} — expected present, found "
                f"{(err.strip().splitlines() or [f'exit {rc}'])[0]}"
            ]
        )
    rules = json.loads(run(node, "ip -j -4 rule show")[1] or "[]")
    problems = []
    for lb in lbs:
        mac = lb_macs[lb.name]
        where = f"{node.name}: return path through {lb.name} ({lb.address}, {mac or '?'})"
        found = (
            re.search(rf"ether saddr {re.escape(mac)} ct mark set .*\| (0x[0-9a-f]+)", table)
            if mac
            else None
        )
        if found is None:
            problems.append(
                f"{where} — expected a connection mark for {mac} in {RETURN_PATH_TABLE}, found none"
            )
            continue
        mark = int(found.group(1), 16)
        lookup = [r for r in rules if r.get("fwmark") and int(r["fwmark"], 16) == mark]
        if not lookup:
            problems.append(
                f"{where} — expected `ip rule fwmark {mark:#x}/{MARK_MASK:#x} "
                "lookup TABLE`, found no rule for that mark"
            )
            continue
        table_id = str(lookup[0].get("table"))
        routes = run(node, f"ip -4 route show table {table_id}")[1]
        if f"default via {lb.address} " not in routes + " ":
            problems.append(
                f"{where} — expected `default via {lb.address}` in table "
                f"{table_id}, found {routes.strip() or 'an empty table'}"
            )
    fail_on(problems)
