"""site.yml's load-balancer play refuses bad variables before any load balancer is touched:
the plan runs first, so with a TCP check for a Local Service or an invalid VIP the play fails
on the plan task and no template task ever runs (the hosts here are unreachable on purpose:
reaching a template task would fail differently)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.modules.conftest import REPO, run_playbook

APPLIED = {
    "name": "python-lb",
    "namespace": "default",
    "type": "LoadBalancer",
    "external_traffic_policy": "Local",
    "ports": [{"name": "http", "port": 80, "node_port": 31001, "protocol": "TCP"}],
    "health_check_node_port": 31897,
}


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {"nodeport_lb_haproxy_services": [APPLIED | {"load_balancer": {"healthcheck": "tcp"}}]},
            "a TCP health check cannot be used for externalTrafficPolicy: Local",
        ),
        (
            {"nodeport_lb_haproxy_services": [APPLIED], "nodeport_lb_vips": ["10.0.0.300"]},
            "nodeport_lb_vips[0]: '10.0.0.300' is not an IP address",
        ),
    ],
)
def test_bad_variable_fails_before_any_lb_config(
    tmp_path: Path, variables: dict, message: str
) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "nodes": {"hosts": {"node1": {"ansible_host": "10.213.0.11"}}},
                        # local connection: the keepalived pre-check gathers no facts when the
                        # interface is given; nothing here may write a file
                        "lbs": {
                            "hosts": {
                                "lb1": {"ansible_connection": "local"},
                                "lb2": {"ansible_connection": "local"},
                            }
                        },
                    }
                }
            }
        )
    )
    extra = {
        "nodeport_lb_vips": ["10.213.0.240"],
        "nodeport_lb_lb_interface": "eth0",
        "nodeport_lb_keepalived_lbs": [
            {"name": "lb1", "address": "10.213.0.101"},
            {"name": "lb2", "address": "10.213.0.102"},
        ],
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        **variables,
    }
    run = run_playbook(
        REPO / "site.yml",
        "-i",
        str(inventory),
        "--tags",
        "lbs",
        "-e",
        "gather_facts=false",
        extra_vars=extra,
    )
    assert run.returncode != 0
    assert message in run.output
    assert "Write haproxy.cfg" not in run.output
    assert "Write keepalived.conf" not in run.output
    assert "ip_nonlocal_bind" not in run.output
