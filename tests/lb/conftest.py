"""Inputs shaped like the playbook's: the Services role's applied Services and inventory hosts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

HCNP = 31897

# What the Services role publishes for the example python-lb (nodeport_lb_applied_services:
# the module's options, with the allocated ports).
PYTHON_LB: dict[str, Any] = {
    "name": "python-lb",
    "namespace": "default",
    "type": "LoadBalancer",
    "external_traffic_policy": "Local",
    "selector": {"app": "python"},
    "ports": [
        {"name": "http", "port": 80, "target_port": 31000, "node_port": 31001, "protocol": "TCP"}
    ],
    "node_ports": {"http": 31001},
    "health_check_node_port": HCNP,
    "load_balancer": {"client_address": "proxy-v2"},
}

NODES = [
    {"name": "node1", "address": "10.213.0.11"},
    {"name": "node2", "address": "10.213.0.12"},
    {"name": "node3", "address": "10.213.0.13"},
]
LBS = [{"name": "lb1", "address": "10.213.0.101"}, {"name": "lb2", "address": "10.213.0.102"}]
VIPS = ["10.213.0.240"]


def lb_facts(address: str, interface: str = "eth0") -> dict[str, Any]:
    """Ansible network facts of a load balancer with one address on ``interface``."""
    return {
        "interfaces": ["lo", interface],
        "lo": {"ipv4": {"address": "127.0.0.1", "netmask": "255.0.0.0"}},
        interface: {"ipv4": {"address": address, "netmask": "255.255.255.0"}},
    }


@pytest.fixture
def python_lb() -> dict[str, Any]:
    return copy.deepcopy(PYTHON_LB)


def service(**changes: Any) -> dict[str, Any]:
    svc = copy.deepcopy(PYTHON_LB)
    svc.update(changes)
    return svc
