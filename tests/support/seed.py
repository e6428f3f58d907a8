"""The two-node topology of the namespace tests and the Services the seed experiment puts on
it, built here once for every test that publishes them.

test-python: NodePort 31000, eTP Cluster; python-lb: LoadBalancer, eTP Local, port ``http``
80 on nodePort 31001, healthCheckNodePort 31897; their pod (pod-a) on node2.
"""

from __future__ import annotations

from typing import Any

from tests.support.objects import endpoint, endpoint_slice, service

APP_PORT = 31000
HCNP = 31897
ADDRESSES = {
    "client": "10.77.0.10",
    "client2": "10.77.0.20",
    "node1": "10.77.0.11",
    "node2": "10.77.0.12",
}
# pod -> (its node, its address, the node's address towards it)
PODS = {"pod-a": ("node2", "10.78.2.5", "10.78.2.1"), "pod-b": ("node1", "10.78.1.5", "10.78.1.1")}
POD_A = PODS["pod-a"][1]


def python_lb(*endpoints: dict[str, Any]) -> list[dict[str, Any]]:
    """python-lb and its EndpointSlice; the endpoints default to pod-a on node2, ready."""
    return [
        service(
            "python-lb",
            [{"name": "http", "port": 80, "targetPort": APP_PORT, "nodePort": 31001}],
            type="LoadBalancer",
            local=True,
            hcnp=HCNP,
        ),
        endpoint_slice(
            "python-lb", APP_PORT, list(endpoints or [endpoint(POD_A, "node2")]), port_name="http"
        ),
    ]


def seed_objects(pod_a: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """test-python, its slice, python-lb, its slice (in that order); ``pod_a`` is python-lb's
    endpoint in another state (terminating, not ready)."""
    return [
        service("test-python", [{"port": 31000, "targetPort": APP_PORT, "nodePort": 31000}]),
        endpoint_slice("test-python", APP_PORT, [endpoint(POD_A, "node2")]),
        *python_lb(*([pod_a] if pod_a else [])),
    ]
