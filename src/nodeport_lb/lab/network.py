"""The lab's wiring with `ip`: one netns per host, veths onto a bridge in a netns of its own.

The bridge namespace has no uplink and no routes, so nothing in the lab reaches any outside
network. The controller joins over one veth (`nplb-ctl`) and gets routes for the lab's own
prefixes only; deleting that veth takes those routes with it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from nodeport_lb.lab import layout
from nodeport_lb.lab.layout import HostPlan
from nodeport_lb.lab.system import LabError, run

NETNS_DIR = Path("/run/netns")


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, *args], check=check).stdout


def netns_exec(netns: str, *args: str, check: bool = True) -> str:
    return run(["ip", "netns", "exec", netns, *args], check=check).stdout


def list_netns() -> list[str]:
    return sorted(p.name for p in NETNS_DIR.glob("*")) if NETNS_DIR.is_dir() else []


def lab_netns() -> list[str]:
    return [name for name in list_netns() if name.startswith(layout.PREFIX)]


def add_netns(name: str) -> None:
    if name not in list_netns():
        ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def delete_netns(name: str) -> None:
    if name in list_netns():
        ip("netns", "delete", name, check=False)


def set_sysctls(netns: str, values: dict[str, str]) -> None:
    netns_exec(netns, "sysctl", "-q", "-w", *(f"{k}={v}" for k, v in values.items()))


def check_no_overlap() -> None:
    """Refuse to start when this machine already routes any part of the lab's range."""
    routes = json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default") or route.get("dev") == layout.CONTROLLER_LINK:
            continue
        with_prefix = dst if "/" in dst else f"{dst}/32"
        try:
            network = ipaddress.ip_network(with_prefix, strict=False)
        except ValueError:
            continue
        if network.overlaps(layout.LAB_NET) and route.get("type", "unicast") == "unicast":
            raise LabError(
                f"this machine already routes {dst} (dev {route.get('dev')}), which overlaps "
                f"the lab's {layout.LAB_NET}; the lab will not touch it"
            )


def create_bridge() -> None:
    add_netns(layout.BRIDGE_NETNS)
    ns = layout.BRIDGE_NETNS
    if "br0" not in ip("-o", "link", "show", netns=ns):
        ip("link", "add", layout.BRIDGE, "type", "bridge", netns=ns)
    # no STP delays, and a bridge that forwards at once
    ip(
        "link",
        "set",
        layout.BRIDGE,
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
        netns=ns,
    )
    ip("link", "set", layout.BRIDGE, "up", netns=ns)


def plug(netns: str, inside_name: str, bridge_port: str) -> None:
    """A veth from ``netns`` (named ``inside_name`` there) to a port of the lab bridge."""
    ip(
        "link",
        "add",
        bridge_port,
        "netns",
        layout.BRIDGE_NETNS,
        "type",
        "veth",
        "peer",
        "name",
        inside_name,
        "netns",
        netns,
    )
    ip("link", "set", bridge_port, "master", layout.BRIDGE, "up", netns=layout.BRIDGE_NETNS)


def bridge_port(host_name: str) -> str:
    return f"v-{host_name}"[:15]


def set_bridge_port(host_name: str, up: bool) -> None:
    """Unplug/replug a host's cable. The netns outlives a stopped container and would still
    forward; a downed bridge port cuts it off while its routes stay (only the carrier goes)."""
    ip("link", "set", bridge_port(host_name), "up" if up else "down", netns=layout.BRIDGE_NETNS)


def wire_host(host: HostPlan, nodes: Sequence[HostPlan]) -> None:
    """A host's netns on the bridge, with its address and routes to the other nodes' pods."""
    add_netns(host.netns)
    plug(host.netns, layout.HOST_LINK, bridge_port(host.name))
    address = f"{host.address}/{layout.HOST_NET.prefixlen}"
    ip("addr", "add", address, "dev", layout.HOST_LINK, netns=host.netns)
    ip("link", "set", layout.HOST_LINK, "up", netns=host.netns)
    # nodes forward to their pods; LBs too (keepalived/haproxy may need it); ARP tuned for VIPs
    set_sysctls(
        host.netns,
        {
            "net.ipv4.ip_forward": "1",
            "net.ipv4.conf.all.rp_filter": "0",
            "net.ipv4.conf.default.rp_filter": "0",
            "net.ipv6.conf.all.disable_ipv6": "1",
            "net.ipv6.conf.default.disable_ipv6": "1",
        },
    )
    if host.role == "node" and host.pod_cidr:
        # pods get /32 routes; addresses of the pod CIDR with no pod go nowhere, not back out
        ip("route", "add", "blackhole", host.pod_cidr, netns=host.netns)
    for node in nodes:  # what a CNI does: reach every other node's pods through that node
        if node.name != host.name and node.pod_cidr:
            ip("route", "add", node.pod_cidr, "via", node.address, netns=host.netns)


def wire_controller(nodes: Iterable[HostPlan]) -> None:
    """The controller's one veth into the lab, and routes for the lab's prefixes only."""
    links = ip("-o", "link", "show")
    if f" {layout.CONTROLLER_LINK}@" not in links and f" {layout.CONTROLLER_LINK}:" not in links:
        ip(
            "link",
            "add",
            layout.CONTROLLER_LINK,
            "type",
            "veth",
            "peer",
            "name",
            "ctl",
            "netns",
            layout.BRIDGE_NETNS,
        )
    ip("link", "set", "ctl", "master", layout.BRIDGE, "up", netns=layout.BRIDGE_NETNS)
    ip(
        "addr",
        "replace",
        f"{layout.CONTROLLER_ADDRESS}/{layout.HOST_NET.prefixlen}",
        "dev",
        layout.CONTROLLER_LINK,
    )
    # no IPv6 link-local chatter from the controller into the lab
    run(
        ["sysctl", "-q", "-w", f"net.ipv6.conf.{layout.CONTROLLER_LINK}.disable_ipv6=1"],
        check=False,
    )
    ip("link", "set", layout.CONTROLLER_LINK, "up")
    for node in nodes:
        if node.pod_cidr:
            ip(
                "route",
                "replace",
                node.pod_cidr,
                "via",
                node.address,
                "dev",
                layout.CONTROLLER_LINK,
            )


def controller_link_exists() -> bool:
    return run(["ip", "link", "show", layout.CONTROLLER_LINK], check=False).returncode == 0


def unwire_controller() -> None:
    # routes via the veth vanish with it; the bridge-side peer goes with its netns too
    if controller_link_exists():
        ip("link", "delete", layout.CONTROLLER_LINK, check=False)


def add_pod_link(pod_netns: str, node: HostPlan, pod_address: str, link: str) -> None:
    """A pod's netns attached to its node by a veth, the way a ptp CNI plugin does it."""
    assert node.pod_gateway and node.pod_cidr
    add_netns(pod_netns)
    ip(
        "link",
        "add",
        link,
        "netns",
        node.netns,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        pod_netns,
    )
    ip("addr", "add", f"{pod_address}/32", "dev", "eth0", netns=pod_netns)
    ip("link", "set", "eth0", "up", netns=pod_netns)
    ip("route", "add", node.pod_gateway, "dev", "eth0", "scope", "link", netns=pod_netns)
    ip("route", "add", "default", "via", node.pod_gateway, "dev", "eth0", netns=pod_netns)
    set_sysctls(pod_netns, {"net.ipv6.conf.all.disable_ipv6": "1"})
    ip("addr", "add", f"{node.pod_gateway}/32", "dev", link, netns=node.netns)
    ip("link", "set", link, "up", netns=node.netns)
    ip("route", "add", f"{pod_address}/32", "dev", link, "src", node.pod_gateway, netns=node.netns)
