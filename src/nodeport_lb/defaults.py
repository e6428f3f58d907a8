"""The ports and ranges nodeport-lb shares with Kubernetes, each written once.

The agent listens on them, the load balancers check them, verify and the cloud renderer expect
them, and the roles' defaults are tested against them (tests/unit/test_defaults.py).
"""

from __future__ import annotations

# kube-proxy's /healthz and /livez: whoever holds it is the node's service proxy, and a load
# balancer in front of an externalTrafficPolicy: Cluster Service checks it.
PROXY_HEALTHZ_PORT = 10256
PROXY_HEALTHZ_PATH = "/healthz"
# The agent's HAProxy agent-check (a weight per node and Service); next to kube-proxy's ports.
AGENT_CHECK_PORT = 10257
# kube-proxy's Prometheus /metrics; beside kube-proxy, which holds it, the agent takes another.
PROXY_METRICS_PORT = 10249
COMPANION_METRICS_PORT = 10263

ALL_ADDRESSES = "0.0.0.0"
LOOPBACK = "127.0.0.1"
DEFAULT_HEALTHZ_ADDRESS = (ALL_ADDRESSES, PROXY_HEALTHZ_PORT)
DEFAULT_METRICS_ADDRESS = (LOOPBACK, PROXY_METRICS_PORT)
COMPANION_METRICS_ADDRESS = (LOOPBACK, COMPANION_METRICS_PORT)


def address_text(address: tuple[str, int]) -> str:
    """``ADDR:PORT``, as the agent's --*-bind-address flags take it."""
    return f"{address[0]}:{address[1]}"


# The API server's default --service-node-port-range (inclusive); NodePortRange() is it parsed.
DEFAULT_NODE_PORT_LOW = 30000
DEFAULT_NODE_PORT_HIGH = 32767
DEFAULT_NODE_PORT_RANGE = f"{DEFAULT_NODE_PORT_LOW}-{DEFAULT_NODE_PORT_HIGH}"
