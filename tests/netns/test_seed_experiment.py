"""The two-node NodePort experiment (Cluster vs Local) on the real kernel, with the real
agent on each node.

test-python: NodePort 31000, eTP Cluster; python-lb: LoadBalancer, eTP Local, nodePort 31001,
healthCheckNodePort 31897; one pod (pod-a) on node2.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from nodeport_lb.agent.endpoints import LAST_CHANGE_TRIGGER_TIME
from tests.netns.conftest import SeedLab
from tests.support.netlib import (
    connect_outcome,
    http_get,
    scrape_metrics,
    tcp_connect,
    udp_request,
    wait_for,
)
from tests.support.objects import endpoint, endpoint_slice, service
from tests.support.seed import ADDRESSES, APP_PORT, HCNP, PODS, seed_objects

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

POD_A = PODS["pod-a"][1]
POD_B = PODS["pod-b"][1]
NODE1, NODE2, CLIENT = ADDRESSES["node1"], ADDRESSES["node2"], ADDRESSES["client"]


@pytest.fixture(scope="module")
def seed(seed_lab: SeedLab) -> Iterator[SeedLab]:
    seed_lab.publish(*seed_objects())
    for node in ("node1", "node2"):
        seed_lab.start_agent(node)
    for node in ("node1", "node2"):
        wait_for(
            lambda n=node: connect_outcome(seed_lab.ns("client"), ADDRESSES[n], 31000) == "open"
        )
    yield seed_lab


def get_json(seed: SeedLab, host: str, port: int, client: str = "client") -> dict:
    status, _, body = http_get(seed.ns(client), host, port)
    assert status == 200
    return json.loads(body)


def hcnp(seed: SeedLab, node: str) -> tuple[int, dict[str, str], bytes]:
    return http_get(seed.ns("client"), ADDRESSES[node], HCNP)


def expected_body(count: int, healthy: bool = True) -> bytes:
    return (
        '{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "python-lb"\n\t},\n'
        f'\t"localEndpoints": {count},\n\t"serviceProxyHealthy": {str(healthy).lower()}\n}}'
    ).encode()


def test_cluster_nodeport_on_a_node_without_the_pod_masquerades(seed: SeedLab) -> None:
    answer = get_json(seed, NODE1, 31000)
    assert answer == {"pod": "pod-a", "peer": NODE1}


def test_local_nodeport_keeps_the_client_address(seed: SeedLab) -> None:
    answer = get_json(seed, NODE2, 31001)
    assert answer == {"pod": "pod-a", "peer": CLIENT}


def test_local_nodeport_on_a_node_without_the_pod_gets_nothing(seed: SeedLab) -> None:
    assert connect_outcome(seed.ns("client"), NODE1, 31001) == "timeout"


def test_health_check_node_port_answers_like_kube_proxy(seed: SeedLab) -> None:
    status, headers, body = hcnp(seed, "node2")
    assert (status, body) == (200, expected_body(1))
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "1"
    status, headers, body = hcnp(seed, "node1")
    assert (status, body) == (503, expected_body(0))
    assert headers["X-Load-Balancing-Endpoint-Weight"] == "0"
    # any path answers the same
    assert http_get(seed.ns("client"), NODE2, HCNP, "/any/path?x=1")[0] == 200


def test_terminating_endpoint_turns_hcnp_503_within_a_second_while_still_served(
    seed: SeedLab,
) -> None:
    started = time.monotonic()
    seed.publish(
        seed_objects(endpoint(POD_A, "node2", ready=False, serving=True, terminating=True))[3]
    )
    wait_for(lambda: hcnp(seed, "node2")[0] == 503, timeout=1.0, interval=0.01)
    assert time.monotonic() - started < 1.0
    assert hcnp(seed, "node2")[2] == expected_body(0)
    # the drain window: traffic that still arrives goes to the serving-terminating pod
    assert get_json(seed, NODE2, 31001) == {"pod": "pod-a", "peer": CLIENT}
    # terminating and no longer serving: never used; the Service has no endpoint left
    seed.publish(
        seed_objects(endpoint(POD_A, "node2", ready=False, serving=False, terminating=True))[3]
    )
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE2, 31001) == "refused")
    seed.publish(seed_objects()[3])
    wait_for(lambda: hcnp(seed, "node2")[0] == 200)


def test_junk_in_the_store_changes_nothing(seed: SeedLab) -> None:
    for store in seed.stores.values():
        (store.path / "junk.yaml").write_text("{ not: [valid yaml\n")
        (store.path / "service_default_python-lb.yaml").write_text(":\n  - {{{{\n")
        (store.path / "service_default_test-python.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "test-python", "namespace": "default"},
                    "spec": {"type": "NodePort", "ports": [{"port": 31000, "nodePort": 29999}]},
                }
            )
        )
    time.sleep(0.5)
    assert hcnp(seed, "node2")[0] == 200
    assert get_json(seed, NODE2, 31001)["peer"] == CLIENT
    assert get_json(seed, NODE1, 31000)["peer"] == NODE1
    metrics = scrape_metrics(seed.ns("node2"))
    assert metrics[("nodeport_lb_store_errors_total", frozenset())] >= 1
    assert metrics[("nodeport_lb_invalid_objects_total", frozenset({("kind", "Service")}))] >= 1
    for store in seed.stores.values():
        (store.path / "junk.yaml").unlink()
    seed.publish(*seed_objects())


def test_sync_metrics_carry_kube_proxys_names(seed: SeedLab) -> None:
    """A dashboard made for kube-proxy reads the agent: sync durations, last sync, and the
    network programming latency from the slice's change time to the rules being in place."""
    count = ("kubeproxy_network_programming_duration_seconds_count", frozenset())
    before = scrape_metrics(seed.ns("node2")).get(count, 0)
    changed_at = datetime.now(UTC)
    # a real change (pod-b joins on node1): a rewrite that changes no endpoint programs nothing
    slice_ = endpoint_slice(
        "python-lb",
        APP_PORT,
        [endpoint(POD_A, "node2"), endpoint(POD_B, "node1")],
        port_name="http",
    )
    slice_["metadata"]["annotations"] = {LAST_CHANGE_TRIGGER_TIME: changed_at.isoformat()}
    seed.publish(slice_)
    metrics = wait_for(lambda: (m := scrape_metrics(seed.ns("node2"))).get(count, 0) > before and m)
    assert metrics[("kubeproxy_sync_proxy_rules_duration_seconds_count", frozenset())] >= 2
    assert metrics[("kubeproxy_sync_partial_proxy_rules_duration_seconds_count", frozenset())] >= 1
    last_sync = metrics[("kubeproxy_sync_proxy_rules_last_timestamp_seconds", frozenset())]
    assert last_sync >= changed_at.timestamp()
    assert metrics[("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds", frozenset())] > 0
    # the slice said when it changed: one observation per node's sync of it, never below 0
    assert metrics[("kubeproxy_network_programming_duration_seconds_sum", frozenset())] >= 0
    seed.publish(seed_objects()[3])
    wait_for(lambda: hcnp(seed, "node1")[0] == 503)


def test_udp_reaches_the_pod_and_stale_flows_are_flushed(seed: SeedLab) -> None:
    seed.publish(
        service(
            "dns-ish", [{"port": 53, "targetPort": APP_PORT, "nodePort": 31053, "protocol": "UDP"}]
        ),
        endpoint_slice("dns-ish", APP_PORT, [endpoint(POD_A, "node2")], protocol="UDP"),
    )
    answer = wait_for(lambda: json.loads(udp_request(seed.ns("client"), NODE1, 31053)))
    assert answer == {"pod": "pod-a", "peer": NODE1}
    # move the endpoint to pod-b: the same client flow must follow at once
    seed.publish(endpoint_slice("dns-ish", APP_PORT, [endpoint(POD_B, "node1")], protocol="UDP"))
    answer = wait_for(
        lambda: (
            (a := json.loads(udp_request(seed.ns("client"), NODE1, 31053)))["pod"] == "pod-b" and a
        )
    )
    assert answer["pod"] == "pod-b"


def test_session_affinity_keeps_a_client_on_one_endpoint(seed: SeedLab) -> None:
    endpoints = [endpoint(POD_A, "node2"), endpoint(POD_B, "node1")]
    seed.publish(
        service(
            "sticky", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31002}], affinity_timeout=60
        ),
        endpoint_slice("sticky", APP_PORT, endpoints),
        service("spread", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31003}]),
        endpoint_slice("spread", APP_PORT, endpoints),
    )
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE1, 31003) == "open")
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE1, 31002) == "open")
    sticky = {get_json(seed, NODE1, 31002)["pod"] for _ in range(20)}
    spread = {get_json(seed, NODE1, 31003)["pod"] for _ in range(20)}
    assert len(sticky) == 1
    assert spread == {"pod-a", "pod-b"}  # fails with probability 2**-19


def test_source_ranges_drop_other_sources_on_the_node_port(seed: SeedLab) -> None:
    seed.publish(
        service(
            "guarded",
            [{"port": 80, "targetPort": APP_PORT, "nodePort": 31004}],
            type="LoadBalancer",
            source_ranges=["10.77.0.10/32"],
        ),
        endpoint_slice("guarded", APP_PORT, [endpoint(POD_A, "node2")]),
    )
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE2, 31004) == "open")
    assert get_json(seed, NODE2, 31004)["pod"] == "pod-a"
    assert connect_outcome(seed.ns("client2"), NODE2, 31004) == "timeout"


def test_service_without_endpoints_is_rejected(seed: SeedLab) -> None:
    seed.publish(service("empty", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31005}]))
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE1, 31005) == "refused")


def test_an_endpoint_count_change_moves_only_map_data_and_traffic_follows(seed: SeedLab) -> None:
    def slice_of(*endpoints: dict) -> dict:
        return endpoint_slice("counted", APP_PORT, list(endpoints))

    def element(node: str) -> str:
        listing = seed.nft(node, "list", "map", "inet", "nodeport-lb", "nodeport-services")
        found = re.search(r"tcp \. 31006 : (goto [\w-]+)", listing)
        assert found, listing
        return found.group(1)

    seed.publish(
        service("counted", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31006}]),
        slice_of(endpoint(POD_A, "node2")),
    )
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE1, 31006) == "open")
    verdict = element("node1")
    assert verdict == "goto masq-pick"
    seed.publish(slice_of(endpoint(POD_A, "node2"), endpoint(POD_B, "node1")))
    # both pods answer: the port's slots moved to the map of two endpoints
    wait_for(
        lambda: {get_json(seed, NODE1, 31006)["pod"] for _ in range(30)} == {"pod-a", "pod-b"},
        timeout=5,
    )
    assert element("node1") == verdict  # the verdict element is as it was
    seed.publish(slice_of())
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE1, 31006) == "refused")
    assert element("node1") == verdict
    seed.publish(slice_of(endpoint(POD_B, "node1")))
    wait_for(lambda: get_json(seed, NODE1, 31006)["pod"] == "pod-b")
    seed.unpublish("Service", "counted")
    seed.unpublish("EndpointSlice", slice_of()["metadata"]["name"])


def test_agent_check_weights_by_local_endpoints(seed: SeedLab) -> None:
    def ask(node: str, key: str) -> str:
        sock = tcp_connect(seed.ns("client"), ADDRESSES[node], 10258)
        with sock:
            sock.sendall(f"{key}\n".encode())
            return sock.recv(100).decode()

    assert ask("node2", "default/python-lb") == "up 100%\n"
    assert ask("node1", "default/python-lb") == "down 0%\n"
    assert ask("node1", "default/nope") == "down 0%\n"


def test_node_drain_makes_healthz_503_but_not_livez(seed: SeedLab) -> None:
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node1"},
        "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler", "effect": "NoSchedule"}]},
    }
    seed.publish(node)
    wait_for(lambda: http_get(seed.ns("client"), NODE1, 10256, "/healthz")[0] == 503)
    status, _, body = http_get(seed.ns("client"), NODE1, 10256, "/livez")
    assert status == 200 and json.loads(body)["nodeEligible"] is False
    assert http_get(seed.ns("client"), NODE2, 10256, "/healthz")[0] == 200
    seed.unpublish("Node", "node1", namespace="")
    wait_for(lambda: http_get(seed.ns("client"), NODE1, 10256, "/healthz")[0] == 200)


def test_removed_service_loses_its_rules_and_health_listener(seed: SeedLab) -> None:
    seed.publish(
        service(
            "short-lived",
            [{"port": 80, "targetPort": APP_PORT, "nodePort": 31006}],
            type="LoadBalancer",
            local=True,
            hcnp=31906,
        ),
        endpoint_slice("short-lived", APP_PORT, [endpoint(POD_A, "node2")]),
    )
    wait_for(lambda: http_get(seed.ns("client"), NODE2, 31906)[0] == 200)
    seed.unpublish("Service", "short-lived")
    wait_for(lambda: connect_outcome(seed.ns("client"), NODE2, 31906) == "refused")
    assert "short-lived" not in seed.nft("node2", "list", "table", "inet", "nodeport-lb")


def read_response_body(conn: socket.socket) -> bytes:
    """One HTTP/1.1 response off a keep-alive connection (headers and body may come apart)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            line.split(b":")[1]
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        )
    )
    while len(body) < length:
        body += conn.recv(4096)
    return body


def test_kill_9_keeps_traffic_and_restart_keeps_established_connections(seed: SeedLab) -> None:
    client = seed.ns("client")
    conn = tcp_connect(client, NODE1, 31000)  # an established, masqueraded connection
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    conn.sendall(request)
    assert json.loads(read_response_body(conn))["peer"] == NODE1
    seed.lab.stop(seed.agents["node1"], signal.SIGKILL)
    assert get_json(seed, NODE1, 31000)["peer"] == NODE1  # rules stayed
    seed.start_agent("node1")  # replaces the whole table at startup
    full_syncs = ("kubeproxy_sync_full_proxy_rules_duration_seconds_count", frozenset())
    wait_for(lambda: scrape_metrics(seed.ns("node1")).get(full_syncs, 0) >= 1)
    conn.sendall(request)
    assert json.loads(read_response_body(conn))["pod"] == "pod-a"  # the old one still works
    conn.close()
    seed.lab.stop(seed.agents["node1"], signal.SIGTERM)
    assert get_json(seed, NODE1, 31000)["peer"] == NODE1  # SIGTERM leaves the rules too
    seed.start_agent("node1")
