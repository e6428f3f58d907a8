"""The ports and ranges nodeport-lb shares with Kubernetes, and the Debian packages its roles
install, each written once.

The agent listens on the ports, the load balancers check them, verify and the cloud renderer
expect them; the lab's package repository carries the packages. The roles' defaults are tested
against both (tests/unit/test_defaults.py).
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


# What each role installs with apt on a bare Debian host (nodeport_lb_<role>_packages): only
# what a fresh Debian server may lack. Ansible's apt module needs python3-apt on the host as
# well (it installs it itself when it is missing).
HAPROXY_PACKAGES = (
    "haproxy",
    "nftables",  # the TPROXY table of transparent mode
    "iproute2",  # its policy rule and local route
    "procps",  # sysctl, pgrep
)
KEEPALIVED_PACKAGES = ("keepalived",)
NODE_PROXY_PACKAGES = (
    "python3-venv",  # the agent's virtualenv
    "python3-packaging",  # Ansible's pip module reads requirements with it
    "nftables",  # the NodePort rules and the return path (libnftables)
    "conntrack",  # UDP flows of removed endpoints are cleared
    "iproute2",  # the return path's policy rules and routes
    "curl",  # nodeport-lb verify asks the node's healthCheckNodePorts from the node itself
)
APT_MODULE_PACKAGES = ("python3-apt",)
