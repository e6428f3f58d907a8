"""A backend's server line is written and read by one type: what the plan writes into
haproxy.cfg reads back as the same fields (verify reads the load balancers' files with it)."""

from __future__ import annotations

import pytest

from nodeport_lb.loadbalancer import Server, plan_haproxy
from tests.lb.conftest import NODES, VIPS, service

CLUSTER = {"external_traffic_policy": "Cluster", "health_check_node_port": 0}


@pytest.mark.parametrize(
    ("svc", "settings"),
    [
        (service(), {"agent_check_port": 10258}),  # proxy-v2, agent-check
        (service(load_balancer={}), None),  # transparent
        (service(**CLUSTER, load_balancer={"healthcheck": "tcp"}), None),  # plain check
        (service(**CLUSTER, load_balancer={"client_address": "proxy-v1"}), None),
    ],
    ids=["proxy-v2-agent", "transparent", "tcp", "proxy-v1"],
)
def test_every_planned_server_line_reads_back_as_its_fields(svc, settings) -> None:
    (listener,) = plan_haproxy([svc], NODES, VIPS, settings).listeners
    for server in listener.servers:
        assert Server.parse(server.line) == server


def test_the_fields_say_what_the_line_does() -> None:
    (listener,) = plan_haproxy([service()], NODES, VIPS, {"agent_check_port": 10258}).listeners
    server = listener.servers[0]
    assert (server.check, server.check_port, server.health_port) == (True, 31897, 31897)
    assert server.send_proxy == "v2"
    assert (server.agent_check, server.agent_port, server.agent_send) == (
        True,
        10258,
        "default/python-lb",
    )
    tcp = service(**CLUSTER, load_balancer={"healthcheck": "tcp"})
    (plain,) = plan_haproxy([tcp], NODES, VIPS).listeners
    assert plain.servers[0].check_port is None and plain.servers[0].health_port == 31001


def test_a_hand_written_line_keeps_the_words_the_plan_never_writes() -> None:
    server = Server.parse("server node1 10.0.0.1:31001 check inter 2s port 31897 backup")
    assert (server.address, server.port, server.check_port) == ("10.0.0.1", 31001, 31897)
    assert server.other == ("inter", "2s", "backup")
    assert not Server.parse("server node1 10.0.0.1:31001").check
