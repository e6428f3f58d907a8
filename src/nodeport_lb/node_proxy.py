"""The node proxy agent's command line as the node_proxy role installs it (one place that
knows the flags of `nodeport-lb agent`, validated before the unit file is written)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from nodeport_lb.agent.peers import LoadBalancerPeer
from nodeport_lb.agent.preflight import COMPANION, MODES, STANDALONE
from nodeport_lb.defaults import (
    AGENT_CHECK_PORT,
    DEFAULT_HEALTHZ_ADDRESS,
    DEFAULT_NODE_PORT_RANGE,
    address_text,
)
from nodeport_lb.loadbalancer import PlanError, fact_key
from nodeport_lb.model import NodePortRange

_SAFE = re.compile(r"^[A-Za-z0-9_./:@,=+-]+$")  # no quoting needed in a systemd ExecStart


def _bind(value: Any, where: str) -> str:
    host, _, port = str(value).rpartition(":")
    try:
        ipaddress.ip_address(host)
        if not 1 <= int(port) <= 65535:
            raise ValueError
    except ValueError:
        raise PlanError(f"{where}: {value!r} is not ADDRESS:PORT") from None
    return str(value)


def agent_arguments(
    *,
    node_name: str,
    mode: str = STANDALONE,
    manifests: str = "",
    kubeconfig: str = "",
    nodeport_addresses: Iterable[str] = (),
    healthz_bind_address: str = address_text(DEFAULT_HEALTHZ_ADDRESS),
    metrics_bind_address: str = "",
    agent_check_port: int = AGENT_CHECK_PORT,
    service_node_port_range: str = DEFAULT_NODE_PORT_RANGE,
    load_balancers: Iterable[str] = (),
    extra_args: Iterable[str] = (),
) -> list[str]:
    """Arguments after `nodeport-lb agent`; PlanError names the bad variable."""
    if bool(manifests) == bool(kubeconfig):
        raise PlanError(
            "node_proxy: set exactly one source: nodeport_lb_node_manifests_path (manifest "
            "store) or nodeport_lb_node_proxy_kubeconfig (Kubernetes API)"
        )
    if mode not in MODES:
        raise PlanError(
            f"node_proxy: agent mode {mode!r} is not one of {', '.join(MODES)} "
            "(nodeport_lb_node_proxy_mode picks it, or auto-detects it)"
        )
    args = ["--mode", mode, "--node-name", str(node_name)]
    args += ["--manifests", str(manifests)] if manifests else ["--kubeconfig", str(kubeconfig)]
    cidrs = []
    for index, cidr in enumerate(nodeport_addresses or ()):
        try:
            cidrs.append(str(ipaddress.ip_network(str(cidr), strict=False)))
        except ValueError:
            raise PlanError(
                f"nodeport_lb_node_proxy_nodeport_addresses[{index}]: {cidr!r} is not a CIDR"
            ) from None
    if cidrs:
        args += ["--nodeport-addresses", ",".join(cidrs)]
    healthz = _bind(healthz_bind_address, "healthz bind address")
    if mode != COMPANION:  # beside kube-proxy, kube-proxy holds /healthz
        args += ["--healthz-bind-address", healthz]
    if metrics_bind_address:  # else the agent's default for its mode
        args += ["--metrics-bind-address", _bind(metrics_bind_address, "metrics bind address")]
    port = str(agent_check_port)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise PlanError(f"nodeport_lb_agent_check_port: {agent_check_port!r} is not a port")
    args += ["--agent-check-port", port]
    try:
        args += ["--service-node-port-range", str(NodePortRange.parse(service_node_port_range))]
    except ValueError as error:
        raise PlanError(f"nodeport_lb_service_node_port_range: {error}") from None
    for index, text in enumerate(load_balancers or ()):
        try:
            LoadBalancerPeer.parse(str(text))
        except ValueError as error:
            raise PlanError(f"node_proxy: load balancer [{index}]: {error}") from None
        args += ["--load-balancer", str(text)]
    args += [str(a) for a in extra_args or ()]
    for arg in args:
        if not _SAFE.match(arg):
            raise PlanError(f"node_proxy: agent argument {arg!r} has characters a unit can't hold")
    return args


def load_balancer_peers(
    hostvars: Iterable[Mapping[str, Any]], address_var: str = "nodeport_lb_lb_address"
) -> list[str]:
    """``NAME,MAC,ADDRESS`` of each load balancer for the agent's return path, from the
    load balancers' inventory variables and network facts: the address is ``address_var`` or
    ``ansible_host``; the link-layer address is ``nodeport_lb_lb_mac`` or that of the
    interface holding the address (the one HAProxy's connections to the nodes leave by)."""
    peers = []
    for host_vars in hostvars:
        name = str(host_vars.get("inventory_hostname"))
        address = str(host_vars.get(address_var) or host_vars.get("ansible_host") or "")
        mac = host_vars.get("nodeport_lb_lb_mac") or _mac_of(address, host_vars)
        if not mac:
            raise PlanError(
                f"{name}: no interface in its facts holds {address!r}, so its link-layer "
                "address is unknown: gather its facts (the node_proxy role does) or set "
                f"nodeport_lb_lb_mac, and {address_var} to its address towards the nodes"
            )
        text = f"{name},{mac},{address}"
        try:
            LoadBalancerPeer.parse(text)
        except ValueError as error:
            raise PlanError(f"load balancer {name}: {error}") from None
        peers.append(text)
    return peers


def _mac_of(address: str, host_vars: Mapping[str, Any]) -> str:
    facts = host_vars.get("ansible_facts") or {}
    for name in facts.get("interfaces") or []:
        info = facts.get(fact_key(name)) or {}
        entries = [info.get("ipv4") or {}, *(info.get("ipv4_secondaries") or [])]
        if any(entry.get("address") == address for entry in entries):
            return str(info.get("macaddress") or "")
    return ""
