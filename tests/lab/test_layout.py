"""The lab's plan and generated files, without building a lab: address plan, mirror, inventory."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from nodeport_lb.lab import layout, lifecycle, rootfs
from nodeport_lb.lab.state import LabHost, LabState
from nodeport_lb.lab.system import LabError


def test_plan_puts_every_address_inside_the_lab_and_never_twice() -> None:
    plan = layout.plan_hosts(3, 2, 1)
    assert [h.name for h in plan] == ["node1", "node2", "node3", "lb1", "lb2", "client1"]
    addresses = [h.address for h in plan] + layout.vips() + [layout.CONTROLLER_ADDRESS]
    assert len(set(addresses)) == len(addresses)
    assert all(ipaddress.ip_address(a) in layout.HOST_NET for a in addresses)
    cidrs = [ipaddress.ip_network(h.pod_cidr) for h in plan if h.pod_cidr]
    assert len(cidrs) == 3
    assert all(c.subnet_of(layout.LAB_NET) and not c.overlaps(layout.HOST_NET) for c in cidrs)
    assert plan[1].pod_gateway == "10.213.130.1"


def test_plan_refuses_impossible_sizes() -> None:
    with pytest.raises(ValueError):
        layout.plan_hosts(0, 1, 1)
    with pytest.raises(ValueError):
        layout.plan_hosts(3, 200, 1)


def test_pod_addresses_skip_the_node_and_used_ones() -> None:
    assert layout.pod_address("10.213.129.0/24", set()) == "10.213.129.2"
    assert layout.pod_address("10.213.129.0/24", {"10.213.129.2"}) == "10.213.129.3"
    assert len(layout.pod_link_name("a-very-long-pod-name-indeed")) <= 15


def test_mirror_from_deb822_and_one_line_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert rootfs.machine_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://other.example/debian bookworm main\n"
    )
    assert rootfs.machine_mirror(tmp_path) == "http://other.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="--mirror"):
        rootfs.machine_mirror(tmp_path)


def test_base_key_follows_the_package_list() -> None:
    assert rootfs.base_key(("a", "b")) == rootfs.base_key(("b", "a"))
    assert rootfs.base_key(("a", "b")) != rootfs.base_key(("a", "b", "c"))


@pytest.mark.parametrize("lbs", [2, 0])
def test_inventory_groups_and_variables(tmp_path: Path, lbs: int) -> None:
    plan = layout.plan_hosts(2, lbs, 1)
    state = LabState(
        hosts=[LabHost(h.name, h.role, h.address, h.netns, h.pod_cidr) for h in plan],
        vips=layout.vips(),
        store_path="/var/lib/nodeport-lb/lab/store",
    )
    path = tmp_path / "hosts.yml"
    lifecycle.write_inventory(state, path)
    inventory = yaml.safe_load(path.read_text())
    top = inventory["all"]
    assert top["hosts"]["localhost"] == {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
    }
    assert top["vars"]["nodeport_lb_store"] == {"path": "/var/lib/nodeport-lb/lab/store"}
    assert top["vars"]["nodeport_lb_node_store_path"] == layout.NODE_STORE_PATH
    assert top["vars"]["nodeport_lb_vips"] == ["10.213.0.240"]  # one VRRP instance
    assert top["vars"]["nodeport_lb_vip_pool"] == "10.213.0.240/29"
    lab_hosts = top["children"]["lab_hosts"]
    assert lab_hosts["vars"]["ansible_connection"] == "ssh"
    assert "UserKnownHostsFile=" in lab_hosts["vars"]["ansible_ssh_common_args"]
    groups = lab_hosts["children"]
    assert groups["nodes"]["hosts"]["node2"] == {
        "ansible_host": "10.213.0.12",
        "nodeport_lb_pod_cidr": "10.213.130.0/24",
    }
    assert len(groups["lbs"]["hosts"] or {}) == lbs
    assert list(groups["clients"]["hosts"]) == ["client1"]
