"""A load balancer as a node's return path knows it (the agent's --load-balancer value).

Apart from the return path itself: the controller checks the same values when it renders the
agent's arguments, without importing the agent's dataplane and metrics.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


@dataclass(frozen=True)
class LoadBalancerPeer:
    """A load balancer as the node sees it: its link-layer address and its address."""

    name: str
    mac: str
    address: str

    @classmethod
    def parse(cls, text: str) -> LoadBalancerPeer:
        """``NAME,MAC,ADDRESS`` (the agent's ``--load-balancer`` value); ValueError says why."""
        parts = [part.strip() for part in text.split(",")]
        if len(parts) != 3:
            raise ValueError(f"expected NAME,MAC,ADDRESS, got {text!r}")
        name, mac, address = parts
        if not _NAME.match(name):
            raise ValueError(f"{name!r}: a load balancer name is letters, digits, - _ . only")
        mac = mac.lower()
        if not _MAC.match(mac) or mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
            raise ValueError(f"{name}: {mac!r} is not a unicast link-layer (MAC) address")
        try:
            parsed = ipaddress.IPv4Address(address)
        except ValueError:
            raise ValueError(f"{name}: {address!r} is not an IPv4 address") from None
        if parsed.is_loopback or parsed.is_multicast or parsed.is_unspecified:
            raise ValueError(f"{name}: {address} cannot be a load balancer's address")
        return cls(name, mac, str(parsed))
