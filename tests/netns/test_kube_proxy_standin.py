"""The lab's kube-proxy stand-in on the real kernel, and the agent in companion mode beside it.

The stand-in (nodeport_lb/lab/kube_proxy.py) plays kube-proxy in `lab up --kube-proxy`; these
tests hold it to kube-proxy's observable behaviour on the two-node topology (pod-a on node2,
pod-b on node1): nodePorts through table ip kube-proxy, eTP Local keeping the client address,
the healthCheckNodePort's exact bytes, /healthz. Then the agent, in companion mode, weighs the
nodes without adding a rule.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from collections.abc import Iterator

import pytest

from nodeport_lb.defaults import DEFAULT_HEALTHZ_ADDRESS, DEFAULT_METRICS_ADDRESS, address_text
from nodeport_lb.lab import kube_proxy as stand_in
from tests.netns.conftest import SeedLab
from tests.support.netlib import (
    agent_cmd,
    connect_outcome,
    http_get,
    in_netns,
    python_cmd,
    tcp_connect,
    wait_for,
)
from tests.support.objects import endpoint, endpoint_slice, service
from tests.support.seed import ADDRESSES, APP_PORT, HCNP, PODS, seed_objects

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

POD_A, POD_B = PODS["pod-a"][1], PODS["pod-b"][1]
NODE1, NODE2, CLIENT = ADDRESSES["node1"], ADDRESSES["node2"], ADDRESSES["client"]


def objects() -> list[dict]:
    """The seed Services and one without endpoints."""
    return [
        *seed_objects(),
        service("empty", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31005}]),
    ]


@pytest.fixture(scope="module")
def cluster(seed_lab: SeedLab) -> Iterator[SeedLab]:
    seed_lab.publish(*objects())
    proxies = {}
    for node in ("node1", "node2"):
        proxies[node] = seed_lab.lab.start(
            seed_lab.ns(node),
            *python_cmd(
                stand_in.__file__,
                f"--hostname-override={node}",
                f"--manifests={seed_lab.stores[node].path}",
                f"--healthz-bind-address={address_text(DEFAULT_HEALTHZ_ADDRESS)}",
                f"--metrics-bind-address={address_text(DEFAULT_METRICS_ADDRESS)}",
            ),
            log_name=f"kube-proxy-{node}.log",
        )
    for node in ("node1", "node2"):
        wait_for(
            lambda n=node: connect_outcome(seed_lab.ns("client"), ADDRESSES[n], HCNP) == "open"
        )
        wait_for(
            lambda n=node: connect_outcome(seed_lab.ns("client"), ADDRESSES[n], 31000) == "open"
        )
    yield seed_lab
    for proc in proxies.values():
        seed_lab.lab.stop(proc)


def get_json(cluster: SeedLab, host: str, port: int) -> dict:
    status, _, body = http_get(cluster.ns("client"), host, port)
    assert status == 200
    return json.loads(body)


def raw_get(netns: str, host: str, port: int, request: bytes) -> bytes:
    def get() -> bytes:
        with socket.create_connection((host, port), timeout=3) as conn:
            conn.sendall(request)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    return in_netns(netns, get)


def test_nodeports_go_through_kube_proxys_table(cluster: SeedLab) -> None:
    tables = cluster.nft("node2", "list", "tables")
    assert "table ip kube-proxy" in tables
    assert "nodeport-lb" not in tables
    # eTP Cluster from a node without the pod: masqueraded to that node's address
    assert get_json(cluster, NODE1, 31000) == {"pod": "pod-a", "peer": NODE1}
    # eTP Local on the pod's node keeps the client's address; elsewhere it is dropped
    assert get_json(cluster, NODE2, 31001) == {"pod": "pod-a", "peer": CLIENT}
    assert connect_outcome(cluster.ns("client"), NODE1, 31001) == "timeout"
    # no endpoints anywhere: refused at once
    assert connect_outcome(cluster.ns("client"), NODE1, 31005) == "refused"


def test_health_check_node_port_is_kube_proxys_byte_for_byte(cluster: SeedLab) -> None:
    request = b"GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    body = stand_in.health_check_body("default", "python-lb", 1, True)
    assert body == (
        b'{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "python-lb"\n\t},\n'
        b'\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}'
    )
    answer = raw_get(cluster.ns("client"), NODE2, HCNP, request)
    date = rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n"
    expected = (
        rb"HTTP/1\.1 200 OK\r\n"
        rb"Content-Type: application/json\r\n"
        rb"X-Content-Type-Options: nosniff\r\n"
        rb"X-Load-Balancing-Endpoint-Weight: 1\r\n"
        + date
        + rb"Content-Length: "
        + str(len(body)).encode()
        + rb"\r\nConnection: close\r\n\r\n"
        + re.escape(body)
    )
    assert re.fullmatch(expected, answer), answer
    answer = raw_get(cluster.ns("client"), NODE1, HCNP, b"POST / HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert answer.endswith(stand_in.health_check_body("default", "python-lb", 0, True))


def test_healthz_on_10256_follows_the_node_drain(cluster: SeedLab) -> None:
    status, headers, body = http_get(cluster.ns("client"), NODE1, 10256, "/healthz")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body.decode().endswith(', "nodeEligible": true}')
    cluster.publish(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "node1"},
            "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]},
        }
    )
    try:
        wait_for(lambda: http_get(cluster.ns("client"), NODE1, 10256, "/healthz")[0] == 503)
        assert http_get(cluster.ns("client"), NODE1, 10256, "/livez")[0] == 200
    finally:
        cluster.unpublish("Node", "node1", namespace="")
    wait_for(lambda: http_get(cluster.ns("client"), NODE1, 10256, "/healthz")[0] == 200)


def test_companion_agent_weighs_the_nodes_and_adds_no_rule(cluster: SeedLab) -> None:
    tables = {n: cluster.nft(n, "list", "tables") for n in ("node1", "node2")}
    agents = {}
    try:
        for node in ("node1", "node2"):
            agents[node] = cluster.lab.start(
                cluster.ns(node),
                *agent_cmd(
                    node,
                    cluster.stores[node].path,
                    "--mode",
                    "companion",
                    "--agent-check-port",
                    "10258",
                ),
                log_name=f"companion-{node}.log",
            )

        def ask(node: str) -> str:
            with tcp_connect(cluster.ns("client"), ADDRESSES[node], 10258) as sock:
                sock.sendall(b"default/python-lb\n")
                return sock.recv(100).decode()

        assert wait_for(lambda: ask("node2") == "up 100%\n")
        # node1's agent starts beside node2's; its first answer, once it listens, is down
        assert wait_for(lambda: ask("node1")) == "down 0%\n"
        cluster.publish(
            endpoint_slice(
                "python-lb",
                APP_PORT,
                [endpoint(POD_A, "node2"), endpoint(POD_B, "node1")],
                port_name="http",
            )
        )
        assert wait_for(lambda: ask("node1") == "up 100%\n")
        # kube-proxy followed the same change (its table changed, by its own hand)
        wait_for(lambda: http_get(cluster.ns("client"), NODE1, HCNP)[0] == 200)
        assert all(agent.poll() is None for agent in agents.values())
        assert {n: cluster.nft(n, "list", "tables") for n in tables} == tables
    finally:
        for agent in agents.values():
            cluster.lab.stop(agent, signal.SIGTERM)
        cluster.publish(objects()[3])
