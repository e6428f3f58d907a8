"""The two-node topology on the real kernel: a client, two nodes, a pod behind each node.

    client 10.77.0.10, client2 10.77.0.20 ─┐
                                  bridge ns ├─ node1 10.77.0.11 ── pod-b 10.78.1.5
                                           └─ node2 10.77.0.12 ── pod-a 10.78.2.5

Each node runs the real agent (``python -m nodeport_lb agent``) on its own manifest store;
nodes route the other node's pod subnet through it, as a CNI would.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from nodeport_lb.store import ManifestStore
from tests.support.netlib import Lab, agent_cmd, http_get, lab_session, python_cmd, wait_for
from tests.support.seed import ADDRESSES, APP_PORT, PODS

PODSERVER = Path(__file__).parents[1] / "support" / "podserver.py"


def _can_run() -> str | None:
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    for tool in ("ip", "nft", "conntrack"):
        if not shutil.which(tool):
            return f"needs {tool}"
    return None


@dataclass
class SeedLab:
    lab: Lab
    stores: dict[str, ManifestStore]
    agents: dict[str, Any] = field(default_factory=dict)
    extra_agent_args: tuple[str, ...] = ()

    def ns(self, short: str) -> str:
        return self.lab.ns(short)

    def publish(self, *objects: dict[str, Any]) -> None:
        for store in self.stores.values():
            for obj in objects:
                store.write(obj)

    def unpublish(self, kind: str, name: str, namespace: str = "default") -> None:
        for store in self.stores.values():
            store.delete(kind, namespace, name)

    def start_agent(
        self, node: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
    ) -> None:
        self.agents[node] = self.lab.start(
            self.ns(node),
            *prefix,
            *agent_cmd(
                node,
                self.stores[node].path,
                "--agent-check-port",
                "10258",
                "--sync-period",
                "5",
                *(arg.replace("{node}", node) for arg in self.extra_agent_args),
            ),
            log_name=f"agent-{node}.log",
            env=env,
        )
        wait_for(lambda: http_get(self.ns(node), "127.0.0.1", 10256, "/livez")[0] == 200)

    def nft(self, node: str, *args: str) -> str:
        return self.lab.run(self.ns(node), "nft", *args).stdout


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedLab]:
    reason = _can_run()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("netns")
    with lab_session(workdir) as lab:
        bridge = lab.add_netns("br")
        lab.run(bridge, "ip", "link", "add", "br0", "type", "bridge")
        lab.run(bridge, "ip", "link", "set", "br0", "up")
        for host, address in ADDRESSES.items():
            ns = lab.add_netns(host)
            lab.link(ns, "eth0", bridge, host)
            lab.run(bridge, "ip", "link", "set", host, "master", "br0")
            lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        for pod, (node, address, gateway) in PODS.items():
            ns = lab.add_netns(pod)
            lab.link(ns, "eth0", lab.ns(node), pod)
            lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            lab.run(ns, "ip", "route", "add", "default", "via", gateway)
            lab.run(lab.ns(node), "ip", "addr", "add", f"{gateway}/24", "dev", pod)
            lab.start(
                ns,
                *python_cmd(str(PODSERVER), "--name", pod, "--port", str(APP_PORT)),
                log_name=f"{pod}.log",
            )
        lab.run(lab.ns("node1"), "ip", "route", "add", "10.78.2.0/24", "via", ADDRESSES["node2"])
        lab.run(lab.ns("node2"), "ip", "route", "add", "10.78.1.0/24", "via", ADDRESSES["node1"])
        for node in ("node1", "node2"):
            lab.run(lab.ns(node), "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for node, address, _ in PODS.values():
            wait_for(lambda a=address, n=node: http_get(lab.ns(n), a, APP_PORT)[0] == 200)
        seed = SeedLab(lab, {n: ManifestStore(workdir / f"store-{n}") for n in ("node1", "node2")})
        for store in seed.stores.values():
            store.path.mkdir()
        yield seed
