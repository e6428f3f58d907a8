"""Nodes: the agent runs, its rules are there, and every hcnp says what the EndpointSlices say."""

from __future__ import annotations

from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import Target, http_get, run
from nodeport_lb.verify.report import fail_on

AGENT_UNIT = "nodeport-lb-agent.service"


def test_agent_is_running_and_enabled(node: Target) -> None:
    service = node.host.service(AGENT_UNIT)
    running, enabled = service.is_running, service.is_enabled
    if not (running and enabled):
        found = f"{'running' if running else 'not running'}, {'enabled' if enabled else 'disabled'}"
        fail_on([f"{node.name}: {AGENT_UNIT} — expected running and enabled, found {found}"])


def test_nftables_table_is_present(node: Target) -> None:
    rc, _, err = run(node, "nft list table inet nodeport-lb >/dev/null")
    if rc != 0:
        found = err.strip().splitlines()[0] if err.strip() else f"exit {rc}"
        fail_on([f"{node.name}: nftables table inet nodeport-lb — expected present, found {found}"])


def test_hcnp_answers_as_the_endpoint_slices_say(
    node: Target, inventory: Inventory, control_plane: ControlPlane
) -> None:
    problems = []
    name = inventory.node_name(node.name)
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
            f"{node.name}: hcnp {hcnp} of Service {key} — expected {expected} "
            f"(EndpointSlices in the {control_plane.source}), found {found}"
        )
    fail_on(problems)
