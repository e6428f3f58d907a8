"""The return path's plan and nftables text (the kernel side runs in tests/lb's netns test)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from nodeport_lb.agent.return_path import MARK_MASK, LoadBalancerPeer, plan_routes, ruleset
from nodeport_lb.loadbalancer import PlanError
from nodeport_lb.node_proxy import agent_arguments, load_balancer_peers

LB1 = LoadBalancerPeer("lb1", "52:54:00:00:00:01", "10.213.0.101")
LB2 = LoadBalancerPeer("lb2", "52:54:00:00:00:02", "10.213.0.102")


def test_parse_validates_each_part() -> None:
    assert LoadBalancerPeer.parse("lb1,52:54:00:00:00:01,10.213.0.101") == LB1
    assert LoadBalancerPeer.parse("lb1, 52:54:00:00:00:01 ,10.213.0.101").mac == LB1.mac
    assert LoadBalancerPeer.parse("lb1,52:54:00:AA:00:01,10.213.0.101").mac.endswith("aa:00:01")
    for bad, message in (
        ("lb1,52:54:00:00:00:01", "NAME,MAC,ADDRESS"),
        ("lb 1,52:54:00:00:00:01,10.0.0.1", "letters, digits"),
        ("lb1,52:54:00:00:00,10.0.0.1", "not a unicast link-layer"),
        ("lb1,ff:ff:ff:ff:ff:ff,10.0.0.1", "not a unicast link-layer"),
        ("lb1,52:54:00:00:00:01,10.0.0.300", "not an IPv4 address"),
        ("lb1,52:54:00:00:00:01,127.0.0.1", "cannot be a load balancer"),
        ('lb1,52:54:00:00:00:01,10.0.0.1"; flush ruleset', "not an IPv4 address"),
    ):
        with pytest.raises(ValueError, match=message):
            LoadBalancerPeer.parse(bad)


def test_each_load_balancer_gets_its_own_mark_and_table() -> None:
    routes = plan_routes([LB1, LB2])
    assert [(r.mark, r.route_table) for r in routes] == [(0x100000, 4201), (0x200000, 4202)]
    assert all(r.mark & MARK_MASK == r.mark and not r.mark & 0xC000 for r in routes)
    with pytest.raises(ValueError, match="clash"):
        plan_routes([LB1, LoadBalancerPeer("lb3", LB1.mac, "10.213.0.103")])
    with pytest.raises(ValueError, match="at most 15"):
        plan_routes(
            [
                LoadBalancerPeer(f"lb{i}", f"52:54:00:00:01:{i:02x}", f"10.0.0.{i + 1}")
                for i in range(16)
            ]
        )


def test_ruleset_marks_by_link_layer_address_and_routes_replies_only() -> None:
    text = ruleset(plan_routes([LB1, LB2]))
    assert text.startswith("table inet nodeport-lb-return-path\ndelete table")
    assert (
        "ct state new ether saddr 52:54:00:00:00:01 "
        "ct mark set ct mark and 0xff0fffff or 0x00100000" in text
    )
    assert (
        text.count("ct direction reply ct mark and 0x00f00000 == 0x00200000") == 2
    )  # prerouting + output
    assert "type route hook output" in text
    if os.geteuid() == 0 and shutil.which("nft"):
        check = subprocess.run(["nft", "-c", "-f", "-"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def _lb_hostvars(name: str, address: str, mac: str, **more: object) -> dict[str, object]:
    """A load balancer's hostvars as Ansible has them after gathering network facts."""
    return {
        "inventory_hostname": name,
        "ansible_host": address,
        "ansible_facts": {
            "interfaces": ["lo", "eth0"],
            "lo": {"ipv4": {"address": "127.0.0.1"}, "macaddress": "00:00:00:00:00:00"},
            "eth0": {"ipv4": {"address": address}, "macaddress": mac},
        },
        **more,
    }


def test_node_proxy_passes_each_load_balancer_from_its_facts() -> None:
    hostvars = [
        _lb_hostvars("lb1", "10.213.0.101", "52:54:00:00:00:01"),
        _lb_hostvars("lb2", "192.0.2.2", "52:54:00:00:00:02", nodeport_lb_lb_address="10.9.9.9"),
    ]
    with pytest.raises(PlanError, match=r"lb2: no interface in its facts holds '10\.9\.9\.9'"):
        load_balancer_peers(hostvars)
    hostvars[1]["nodeport_lb_lb_mac"] = "52:54:00:00:00:09"
    peers = load_balancer_peers(hostvars)
    assert peers == ["lb1,52:54:00:00:00:01,10.213.0.101", "lb2,52:54:00:00:00:09,10.9.9.9"]
    args = agent_arguments(node_name="node1", manifests="/m", load_balancers=peers)
    assert args[-4:] == ["--load-balancer", peers[0], "--load-balancer", peers[1]]
    with pytest.raises(PlanError, match=r"load balancer \[0\]: .*not an IPv4"):
        agent_arguments(
            node_name="node1", manifests="/m", load_balancers=["lb1,52:54:00:00:00:01,x"]
        )
