"""The agent's two modes on the real kernel: standalone refuses to compete with kube-proxy and
names companion mode; companion runs beside kube-proxy's table without touching it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.store import ManifestStore
from tests.netns.conftest import _can_run
from tests.support.netlib import (
    agent_cmd,
    connect_outcome,
    http_get,
    in_netns,
    lab_session,
    wait_for,
)
from tests.support.objects import endpoint_slice, service

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

HCNP = 31899
# what a kube-proxy in nftables mode has already programmed on the node
KUBE_PROXY_TABLE = """table ip kube-proxy {
	comment "rules for kube-proxy"
	map service-nodeports {
		type inet_proto . inet_service : verdict
		comment "NodePort traffic"
	}
	chain services {
		fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports
	}
	chain nat-prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		jump services
	}
}
"""


def _skip_unless_possible() -> None:
    reason = _can_run()
    if reason:
        pytest.skip(reason)


def test_standalone_refuses_to_start_next_to_kube_proxy_and_names_companion_mode(
    tmp_path: Path,
) -> None:
    _skip_unless_possible()
    store = tmp_path / "store"
    store.mkdir()
    with lab_session(tmp_path) as lab:
        node = lab.add_netns("kp")
        lab.run(node, "nft", "add", "table", "ip", "kube-proxy")
        cmd = ["ip", "netns", "exec", node, *agent_cmd("kp", store, "--mode", "standalone")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert (
            "refusing to start in standalone mode: kube-proxy's nftables table is present"
            in proc.stderr
        )
        assert "companion mode (--mode companion)" in proc.stderr
        assert "nodeport-lb" not in lab.run(node, "nft", "list", "tables").stdout


def agent_check(netns: str, key: str) -> str:
    def ask() -> str:
        with socket.create_connection(("127.0.0.1", 10258), timeout=2) as conn:
            conn.sendall(f"{key}\n".encode())
            return conn.recv(100).decode()

    return in_netns(netns, ask)


def test_companion_leaves_kube_proxys_table_and_ports_alone_and_weighs_the_node(
    tmp_path: Path,
) -> None:
    _skip_unless_possible()
    store = ManifestStore(tmp_path / "store")
    store.path.mkdir()
    web = service(
        "web",
        [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31080}],
        type="LoadBalancer",
        local=True,
        hcnp=HCNP,
    )
    store.write(web)
    local = [
        {"addresses": [f"10.79.0.{i}"], "conditions": {"ready": True}, "nodeName": "kp"}
        for i in (5, 6, 7)
    ]
    store.write(endpoint_slice("web", 8080, local, port_name="http"))
    with lab_session(tmp_path) as lab:
        node = lab.add_netns("kp")
        lab.run(node, "ip", "link", "set", "lo", "up")
        subprocess.run(
            ["ip", "netns", "exec", node, "nft", "-f", "-"],
            input=KUBE_PROXY_TABLE,
            text=True,
            check=True,
        )
        before = lab.run(node, "nft", "list", "ruleset").stdout
        agent = lab.start(
            node,
            *agent_cmd("kp", store.path, "--mode", "companion", "--agent-check-port", "10258"),
            log_name="agent-companion.log",
        )
        assert wait_for(lambda: agent_check(node, "default/web") == "up 300%\n")
        # kube-proxy's ports stay kube-proxy's: no hcnp, no :10256 of the agent's own
        assert connect_outcome(node, "127.0.0.1", HCNP) == "refused"
        assert connect_outcome(node, "127.0.0.1", 10256) == "refused"
        assert http_get(node, "127.0.0.1", 10263, "/metrics")[0] == 200  # 10249 is kube-proxy's
        assert lab.run(node, "nft", "list", "ruleset").stdout == before
        store.write(endpoint_slice("web", 8080, local[:1], port_name="http"))
        assert wait_for(lambda: agent_check(node, "default/web") == "up 100%\n")
        assert lab.run(node, "nft", "list", "ruleset").stdout == before
        assert agent.poll() is None, "the companion agent exited"
