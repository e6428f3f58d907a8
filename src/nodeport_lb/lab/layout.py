"""The lab's address plan and names: pure data, decided before anything is created.

10.213.0.0/16            the lab (nothing outside it is ever routed to)
10.213.0.0/24            the host segment on the bridge
  .1                     the controller (this machine), on veth `nplb-ctl`; it serves the
                         hosts' Debian packages on port 8213 (their only apt source)
  .11, .12 …             nodes        (node1, node2 …)
  .101, .102 …           load balancers (lb1, lb2 …)
  .201, .202 …           clients      (client1 …)
  .240 – .247            VIPs for the load balancers (keepalived)
10.213.<128+N>.0/24      pod CIDR of node N; the node is .1 in it, pods .2 and up
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

PREFIX = "nplb-"  # every netns/link/machine the lab makes on the controller starts with this
LAB_NET = ipaddress.ip_network("10.213.0.0/16")
HOST_NET = ipaddress.ip_network("10.213.0.0/24")
CONTROLLER_ADDRESS = "10.213.0.1"
PACKAGE_REPO_PORT = 8213
PACKAGE_REPO_URL = f"http://{CONTROLLER_ADDRESS}:{PACKAGE_REPO_PORT}/"
# the hosts' one apt source: a flat repository, unsigned (it is the lab's own)
APT_SOURCE = f"deb [trusted=yes] {PACKAGE_REPO_URL} ./"
VIP_NET = ipaddress.ip_network("10.213.0.240/29")
BRIDGE_NETNS = f"{PREFIX}br"
BRIDGE = "br0"
CONTROLLER_LINK = f"{PREFIX}ctl"
HOST_LINK = "eth0"  # the host's interface on the bridge, as the container sees it
NODE_STORE_PATH = "/etc/nodeport-lb/manifests"  # where nodes see the store, read-only

ROLE_BASE = {"node": 10, "lb": 100, "client": 200}
ROLE_PREFIX = {"node": "node", "lb": "lb", "client": "client"}
MAX_PER_ROLE = {"node": 89, "lb": 89, "client": 39}
POD_NET_BASE = 128  # third octet of node 1's pod CIDR


@dataclass(frozen=True)
class HostPlan:
    name: str
    role: str
    address: str
    pod_cidr: str | None

    @property
    def netns(self) -> str:
        return f"{PREFIX}{self.name}"

    @property
    def pod_gateway(self) -> str | None:
        """The node's address in its pod CIDR, the pods' default gateway."""
        if not self.pod_cidr:
            return None
        return str(ipaddress.ip_network(self.pod_cidr).network_address + 1)


def plan_hosts(nodes: int, lbs: int, clients: int) -> list[HostPlan]:
    counts = {"node": nodes, "lb": lbs, "client": clients}
    for role, count in counts.items():
        if not 0 <= count <= MAX_PER_ROLE[role]:
            raise ValueError(f"--{role}s must be between 0 and {MAX_PER_ROLE[role]}")
    if nodes < 1:
        raise ValueError("the lab needs at least one node")
    hosts: list[HostPlan] = []
    for role, count in counts.items():
        for index in range(1, count + 1):
            address = str(HOST_NET.network_address + ROLE_BASE[role] + index)
            pod_cidr = None
            if role == "node":
                pod_cidr = str(ipaddress.ip_network(f"10.213.{POD_NET_BASE + index}.0/24"))
            hosts.append(HostPlan(f"{ROLE_PREFIX[role]}{index}", role, address, pod_cidr))
    return hosts


# The LBs hold the first address of the VIP pool (one VRRP instance); a Service can take
# another from the pool with `load_balancer: {vip: ...}` after adding it to nodeport_lb_vips.
VIPS_HELD = 1


def vips() -> list[str]:
    """The VIPs the lab's load balancers hold."""
    return [str(address) for address in VIP_NET][:VIPS_HELD]


def pod_address(pod_cidr: str, used: set[str]) -> str:
    """The lowest free pod address in a node's pod CIDR (.1 is the node)."""
    network = ipaddress.ip_network(pod_cidr)
    for address in list(network.hosts())[1:]:
        if str(address) not in used:
            return str(address)
    raise ValueError(f"pod CIDR {pod_cidr} is full")


def pod_link_name(pod_name: str) -> str:
    """The node-side veth of a pod: short (15 chars max) and stable for a pod name."""
    return "pod" + hashlib.sha256(pod_name.encode()).hexdigest()[:10]
