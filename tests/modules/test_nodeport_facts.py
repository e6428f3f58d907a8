"""nodeport_lb.core.nodeport_facts against Ansible's own setup module, both run by one
ansible-playbook inside a network namespace of the test's own (a veth with a primary, a
secondary and a /32 address, as a load balancer holding a VIP has): the fields the roles read
must be the same, under the same names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netlib import Lab, sh

FIELDS = ("device", "macaddress")
ADDRESS_FIELDS = ("address", "netmask", "network", "prefix", "broadcast")


@pytest.fixture
def host_netns(tmp_path: Path) -> Iterator[str]:
    lab = Lab(tmp_path)
    try:
        host, peer = lab.add_netns("host"), lab.add_netns("peer")
        lab.link(host, "eth0", peer, "eth0")
        for address in ("10.251.0.101/24", "10.251.0.102/24", "10.251.0.240/32"):
            sh("ip", "-n", host, "addr", "add", address, "dev", "eth0")
        yield host
    finally:
        lab.close()


def interface_view(facts: dict[str, Any], name: str) -> dict[str, Any]:
    entry = facts.get(name) or facts.get(f"ansible_{name}") or {}

    def addresses(value: Any) -> Any:
        if isinstance(value, list):
            return [addresses(v) for v in value]
        return {k: value[k] for k in ADDRESS_FIELDS} if value else None

    return {
        **{k: entry.get(k) for k in FIELDS},
        "ipv4": addresses(entry.get("ipv4")),
        "ipv4_secondaries": addresses(entry.get("ipv4_secondaries") or []),
    }


def test_the_facts_the_roles_read_are_setups_own(playbook, host_netns: str) -> None:
    run = playbook(
        [
            {"ansible.builtin.setup": {"gather_subset": ["!all", "network"]}, "register": "setup"},
            {"nodeport_lb.core.nodeport_facts": {}, "register": "ours"},
        ],
        netns=host_netns,
    )
    assert run.returncode == 0, run.output
    setup = {
        k.removeprefix("ansible_"): v for k, v in run.results["setup"]["ansible_facts"].items()
    }
    ours = run.results["ours"]["ansible_facts"]
    assert sorted(ours["interfaces"]) == sorted(setup["interfaces"]) == ["eth0", "lo"]
    for name in ours["interfaces"]:
        assert interface_view(ours, name) == interface_view(setup, name), name
    assert len(ours["eth0"]["ipv4_secondaries"]) == 2  # the secondary and the /32
    assert ours["architecture"] == setup["architecture"]
    version = setup["python"]["version"]
    assert ours["python"]["version"] == {k: version[k] for k in ("major", "minor", "micro")}


def test_a_host_whose_python_cannot_answer_fails(playbook, host_netns: str) -> None:
    run = playbook(
        [{"nodeport_lb.core.nodeport_facts": {"python": "/nonexistent/python3"}}],
        netns=host_netns,
    )
    assert run.returncode != 0
    assert "could not read the host's facts" in run.output
