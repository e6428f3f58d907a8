"""Load balancers: HAProxy and keepalived run valid configs, every eTP Local backend checks
HTTP on the Service's live hcnp, HAProxy has UP exactly the nodes with ready local pods, and
each VIP is on exactly one load balancer."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from nodeport_lb.loadbalancer import TRANSPARENT_SOURCE, HAProxyPlan
from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.expected import local_listeners
from nodeport_lb.verify.haproxy import is_up, parse_backends
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import (
    DEFAULT_STATS_SOCKET,
    Target,
    haproxy_runtime,
    local_addresses,
    run,
)
from nodeport_lb.verify.report import fail_on

CAP_NET_RAW = 13  # linux/capability.h


def _path(inventory: Inventory, lb: Target, variable: str, default: str) -> str:
    return str(inventory.vars_of(lb.name).get(variable) or default)


def _haproxy_config(inventory: Inventory, lb: Target) -> str:
    return _path(inventory, lb, "nodeport_lb_haproxy_config_path", "/etc/haproxy/haproxy.cfg")


def _haproxy_runtime(inventory: Inventory, lb: Target) -> tuple[dict, dict]:
    """(show stat, show servers state) from the runtime API socket the role configured."""
    socket = _path(inventory, lb, "nodeport_lb_haproxy_stats_socket", DEFAULT_STATS_SOCKET)
    return haproxy_runtime(lb, socket)


def _running_with_valid_config(lb: Target, unit: str, validate: str) -> list[str]:
    problems = []
    service = lb.host.service(unit)
    if not service.is_running:
        problems.append(f"{lb.name}: {unit}.service — expected running, found not running")
    if not service.is_enabled:
        problems.append(f"{lb.name}: {unit}.service — expected enabled, found disabled")
    rc, out, err = run(lb, validate)
    if rc != 0:
        last = (err.strip() or out.strip() or f"exit {rc}").splitlines()[-1]
        problems.append(f"{lb.name}: {unit} config — expected valid ({validate}), found {last}")
    return problems


def test_haproxy_runs_a_valid_config(lb: Target, inventory: Inventory) -> None:
    config = _haproxy_config(inventory, lb)
    fail_on(_running_with_valid_config(lb, "haproxy", f"haproxy -c -f {shlex.quote(config)}"))


def test_keepalived_runs_a_valid_config(lb: Target, inventory: Inventory) -> None:
    config = _path(
        inventory, lb, "nodeport_lb_keepalived_config_path", "/etc/keepalived/keepalived.conf"
    )
    fail_on(_running_with_valid_config(lb, "keepalived", f"keepalived -t -f {shlex.quote(config)}"))


def test_local_backends_check_http_on_the_live_hcnp(
    lb: Target, inventory: Inventory, plan: HAProxyPlan, control_plane: ControlPlane
) -> None:
    config = _haproxy_config(inventory, lb)
    backends = parse_backends(lb.host.file(config).content_string)
    _, runtime = _haproxy_runtime(inventory, lb)
    problems = []
    for listener, service in local_listeners(plan, control_plane):
        hcnp = service.health_check_node_port
        where = f"{lb.name}: backend {listener.service}"
        backend = backends.get(listener.name)
        if backend is None:
            problems.append(f"{where} ({listener.name}) — expected in {config}, found missing")
            continue
        for server in listener.servers:
            found = backend.servers.get(server.name)
            if found is None:
                problems.append(
                    f"{where} has no server {server.name} — expected "
                    f"{server.address}:{server.port} checked over HTTP on {hcnp}"
                )
                continue
            if (found.address, found.port) != (server.address, server.port):
                problems.append(
                    f"{where} sends {server.name}'s traffic to {found.address}:{found.port} — "
                    f"expected {server.address}:{server.port} (the live nodePort)"
                )
            if not found.check:
                problems.append(
                    f"{where} does not check {server.name} — an eTP Local Service needs an "
                    f"HTTP check on the healthCheckNodePort {hcnp}"
                )
                continue
            if not backend.http_check:
                problems.append(
                    f"{where} checks {server.name} with TCP on {found.health_port} — an eTP "
                    f"Local Service needs an HTTP check (option httpchk) on the "
                    f"healthCheckNodePort {hcnp}"
                )
            if found.health_port != hcnp:
                problems.append(
                    f"{where} checks {server.name} on port {found.health_port} — expected the "
                    f"Service's live healthCheckNodePort {hcnp} (stale: Service recreated?)"
                )
            live = runtime.get((listener.name, server.name), {}).get("srv_check_port")
            if live is not None and live != str(found.health_port):
                problems.append(
                    f"{where} runs checks on {server.name} port {live} — {config} says "
                    f"{found.health_port}: HAProxy was not reloaded"
                )
    fail_on(problems)


def test_haproxy_has_up_exactly_the_nodes_with_ready_pods(
    lb: Target, inventory: Inventory, plan: HAProxyPlan, control_plane: ControlPlane
) -> None:
    stats, _ = _haproxy_runtime(inventory, lb)
    problems = []
    for listener, service in local_listeners(plan, control_plane):
        for server in listener.servers:
            ready = control_plane.local_ready(service, inventory.node_name(server.name))
            row = stats.get((listener.name, server.name))
            status = row["status"] if row else "missing"
            if row is not None and is_up(status) == (ready > 0):
                continue
            expected = (
                f"UP ({ready} ready endpoint(s) on {server.name})"
                if ready
                else f"DOWN (no ready endpoint on {server.name})"
            )
            problems.append(
                f"{lb.name}: backend {listener.service} has {server.name} {status} — "
                f"expected {expected}"
            )
    fail_on(problems)


def test_vip_is_on_exactly_one_load_balancer(vip: str, lbs: list[Target]) -> None:
    holders = [lb.name for lb in lbs if vip in local_addresses(lb)]
    if len(holders) != 1:
        who = ", ".join(holders) or "lbs"
        found = f"on {' and '.join(holders)}" if holders else "on none"
        fail_on([f"{who}: VIP {vip} — expected on exactly one load balancer, found {found}"])


def test_transparent_mode_has_its_tproxy_rules_and_privileges(
    lb: Target, inventory: Inventory, plan: HAProxyPlan
) -> None:
    """Transparent backends connect from the clients' addresses: the replies must reach
    HAProxy (socket match → mark → policy rule → local route), and HAProxy must hold
    CAP_NET_RAW without being root."""
    if not plan.transparent:
        pytest.skip("no Service uses client_address: transparent")
    tproxy = plan.to_dict()["tproxy"]
    mark = int(tproxy["mark"], 16)
    problems = []
    rc, table, _ = run(lb, f"nft list table {tproxy['nft_table']}")
    if rc != 0 or "socket transparent 1" not in table or "meta mark set" not in table:
        problems.append(
            f"{lb.name}: nftables table {tproxy['nft_table']} — expected `socket transparent 1 "
            f"meta mark set …`, found {'no table' if rc else 'no such rule'}"
        )
    rules = json.loads(run(lb, "ip -j -4 rule show")[1] or "[]")
    if not any(
        r.get("fwmark")
        and int(r["fwmark"], 16) == mark
        and str(r.get("table")) == str(tproxy["route_table"])
        for r in rules
    ):
        problems.append(
            f"{lb.name}: policy rule — expected `fwmark {mark:#x}/{mark:#x} lookup "
            f"{tproxy['route_table']}`, found none"
        )
    routes = run(lb, f"ip -4 route show table {tproxy['route_table']}")[1]
    if "local default dev lo" not in routes:
        problems.append(
            f"{lb.name}: table {tproxy['route_table']} — expected `local 0.0.0.0/0 dev lo`, "
            f"found {routes.strip() or 'an empty table'}"
        )
    backends = parse_backends(lb.host.file(_haproxy_config(inventory, lb)).content_string)
    for listener in plan.listeners:
        backend = backends.get(listener.name)
        transparent = listener.client_address == "transparent"
        if transparent and backend is not None and TRANSPARENT_SOURCE not in backend.lines:
            problems.append(
                f"{lb.name}: backend {listener.service} — expected `{TRANSPARENT_SOURCE}` "
                "(client_address: transparent), found none"
            )
    rc, status, _ = run(lb, "cat /proc/$(pgrep -o -x haproxy)/status")
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M)
    caps = re.search(r"^CapEff:\s+([0-9a-f]+)", status, re.M)
    if rc != 0 or not uid or not caps:
        problems.append(f"{lb.name}: haproxy — expected a running master process, found none")
    elif uid.group(1) == "0" or not int(caps.group(1), 16) & (1 << CAP_NET_RAW):
        problems.append(
            f"{lb.name}: haproxy runs as uid {uid.group(1)} with capabilities {caps.group(1)} "
            "— expected a non-root user holding CAP_NET_RAW (transparent connections)"
        )
    fail_on(problems)
