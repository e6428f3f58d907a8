"""The keepalived plan: one VRRP instance per VIP on each load balancer, computed here so
keepalived.conf.j2 only prints it."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from nodeport_lb.loadbalancer.settings import (
    KeepalivedSettings,
    PlanError,
    parse_hosts,
    validate_vips,
)
from nodeport_lb.remote_state import fact_key


@dataclass(frozen=True)
class VrrpInstance:
    name: str
    vip: str
    virtual_router_id: int
    interface: str
    priority: int
    unicast_src_ip: str
    unicast_peers: tuple[str, ...]


@dataclass(frozen=True)
class KeepalivedPlan:
    settings: KeepalivedSettings
    host: str
    instances: tuple[VrrpInstance, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interface_for(vip: str, facts: Mapping[str, Any]) -> tuple[str, str] | None:
    """(interface, its address) for the interface whose IPv4 network holds ``vip``, read from
    Ansible's network facts; None when no interface does."""
    target = ipaddress.ip_address(vip)
    for name in sorted(facts.get("interfaces") or []):
        info = facts.get(fact_key(name)) or {}
        addresses = [info.get("ipv4") or {}, *(info.get("ipv4_secondaries") or [])]
        for entry in addresses:
            if not entry.get("address") or not entry.get("netmask"):
                continue
            network = ipaddress.ip_network(f"{entry['address']}/{entry['netmask']}", strict=False)
            if target in network and network.prefixlen < 32 and entry["address"] != vip:
                return name, entry["address"]
    return None


def plan_keepalived(
    vips: Any,
    host: str,
    lbs: Any,
    facts: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> KeepalivedPlan:
    """One VRRP instance per VIP for load balancer ``host`` of the group ``lbs``.

    Priority: the host's ``nodeport_lb_keepalived_priority`` or, by default, 150 for the first
    load balancer of the group, 140 for the second, ... (the first one holds the VIPs).
    """
    config = KeepalivedSettings.parse(settings)
    vip_list = validate_vips(vips)
    lb_list = parse_hosts(lbs, "lbs")
    me = next((lb for lb in lb_list if lb.name == host), None)
    if me is None:
        raise PlanError(f"{host} is not in the group lbs ({[lb.name for lb in lb_list]})")
    position = lb_list.index(me)
    priority = me.priority if me.priority is not None else max(150 - 10 * position, 1)
    if config.virtual_router_id_base + len(vip_list) - 1 > 255:
        raise PlanError(
            "nodeport_lb_keepalived_virtual_router_id_base: "
            f"{config.virtual_router_id_base} + {len(vip_list)} VIPs passes 255"
        )
    instances = []
    for index, vip in enumerate(vip_list):
        interface, own_address = config.interface, me.address
        if not interface:
            found = interface_for(vip, facts or {})
            if found is None:
                raise PlanError(
                    f"{host}: no interface has an IPv4 network holding the VIP {vip}; set "
                    "nodeport_lb_lb_interface"
                )
            interface, own_address = found
        peers = tuple(lb.address for lb in lb_list if lb is not me) if config.unicast else ()
        for address in (*peers, own_address) if config.unicast else ():
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise PlanError(
                    f"{host}: unicast VRRP needs the load balancers' IPv4 addresses, got "
                    f"{address!r}; set nodeport_lb_lb_address on each load balancer"
                ) from None
        instances.append(
            VrrpInstance(
                name=f"nodeport_lb_vip_{index + 1}",
                vip=vip,
                virtual_router_id=config.virtual_router_id_base + index,
                interface=interface,
                priority=priority,
                unicast_src_ip=own_address if config.unicast else "",
                unicast_peers=peers,
            )
        )
    return KeepalivedPlan(config, host, tuple(instances))
