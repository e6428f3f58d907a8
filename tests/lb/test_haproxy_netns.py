"""HAProxy for real, with the rendered configuration, inside test network namespaces:

    client ns 10.251.3.2 ──► lb ns (HAProxy on VIP 10.251.3.100:80) ──► node1 ns 10.251.1.2
                                                                   └──► node2 ns 10.251.2.2

Each node runs tests/lb/fakenode.py: an echo pod on the nodePort, a healthCheckNodePort that
answers 200 or 503 as a file says, and an agent-check responder. Only namespaces this test
creates are used; no route or rule is added outside them and HAProxy never runs in the root
namespace. Everything is killed by PID and every namespace deleted, whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nodeport_lb.loadbalancer import plan_haproxy
from nodeport_lb.templating import render_template
from tests.lb.conftest import HCNP, service

pytestmark = [
    pytest.mark.netns,
    pytest.mark.xdist_group("netns"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("haproxy"), reason="needs root and haproxy"
    ),
]

PREFIX = f"nplbr-{os.getpid()}-"
VIP = "10.251.3.100"
CLIENT = "10.251.3.2"
NODE_PORT = 31001
AGENT_PORT = 10257
FAKENODE = Path(__file__).with_name("fakenode.py")


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


def in_ns(ns: str, *args: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *args]


@dataclass
class Lab:
    lb: str
    client: str
    nodes: dict[str, Path]  # node name -> its state directory
    socket_path: Path

    def set_hcnp(self, node: str, status: int) -> None:
        (self.nodes[node] / "STATE").write_text(str(status))

    def request(self) -> dict:
        code = (
            "import socket,sys;s=socket.create_connection((sys.argv[1],80),timeout=3);"
            "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n');d=b''\n"
            "while (c:=s.recv(4096)): d+=c\n"
            "print(d.split(b'\\r\\n\\r\\n',1)[1].decode())"
        )
        out = subprocess.run(
            in_ns(self.client, sys.executable, "-c", code, VIP),
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode:
            return {"error": out.stderr.strip().splitlines()[-1:]}
        return json.loads(out.stdout)

    def server_states(self) -> dict[str, str]:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(self.socket_path))
            conn.sendall(b"show stat\n")
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        states = {}
        for line in data.decode().splitlines()[1:]:
            cols = line.split(",")
            if len(cols) > 17 and cols[1] in self.nodes:
                states[cols[1]] = cols[17]
        return states

    def wait_states(self, expected: dict[str, str], timeout: float = 10) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.server_states() == expected:
                return time.monotonic() - start
            time.sleep(0.05)
        raise AssertionError(f"states {self.server_states()} never became {expected}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    names = {
        "lb": PREFIX + "lb",
        "client": PREFIX + "cl",
        "node1": PREFIX + "n1",
        "node2": PREFIX + "n2",
    }
    processes: list[subprocess.Popen] = []
    created: list[str] = []
    try:
        for ns in names.values():
            sh("ip", "netns", "add", ns)
            created.append(ns)
        for ns in names.values():
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        links = [("node1", "10.251.1"), ("node2", "10.251.2"), ("client", "10.251.3")]
        for index, (peer, subnet) in enumerate(links):
            # veth created inside the lb namespace: nothing appears in the root namespace.
            a, b = f"v{index}a", f"v{index}b"
            sh(
                "ip",
                "-n",
                names["lb"],
                "link",
                "add",
                a,
                "type",
                "veth",
                "peer",
                "name",
                b,
                "netns",
                names[peer],
            )
            sh("ip", "-n", names["lb"], "addr", "add", f"{subnet}.1/24", "dev", a)
            sh("ip", "-n", names[peer], "addr", "add", f"{subnet}.2/24", "dev", b)
            sh("ip", "-n", names["lb"], "link", "set", a, "up")
            sh("ip", "-n", names[peer], "link", "set", b, "up")
        sh("ip", "-n", names["lb"], "addr", "add", f"{VIP}/32", "dev", "v2a")

        nodes: dict[str, Path] = {}
        for node in ("node1", "node2"):
            state = tmp_path / node
            state.mkdir()
            (state / "STATE").write_text("200")
            nodes[node] = state
            processes.append(
                subprocess.Popen(
                    in_ns(
                        names[node],
                        sys.executable,
                        str(FAKENODE),
                        node,
                        str(NODE_PORT),
                        str(HCNP),
                        str(AGENT_PORT),
                        str(state),
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 10
        while not all((d / "ready").exists() for d in nodes.values()):
            assert time.monotonic() < deadline, "fake nodes did not start"
            time.sleep(0.05)

        socket_path = tmp_path / "admin.sock"
        plan = plan_haproxy(
            [service()],
            [
                {"name": "node1", "address": "10.251.1.2"},
                {"name": "node2", "address": "10.251.2.2"},
            ],
            [VIP],
            {
                # roundrobin so that both nodes would get traffic if HAProxy let them
                "balance": "roundrobin",
                "stats_socket": str(socket_path),
                "log": "stderr format raw local0",
                "chroot": str(tmp_path),
                "user": "root",
                "group": "root",
                "agent_check_port": AGENT_PORT,
                "agent_inter": "500ms",
                "maxconn": 1000,  # under the test process's file limit
            },
        )
        config = tmp_path / "haproxy.cfg"
        config.write_text(render_template("haproxy.cfg.j2", plan=plan.to_dict()))
        check = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        log = (tmp_path / "haproxy.log").open("w")
        processes.append(
            subprocess.Popen(
                in_ns(names["lb"], "haproxy", "-db", "-f", str(config)), stdout=log, stderr=log
            )
        )
        deadline = time.monotonic() + 10
        while not socket_path.exists():
            assert time.monotonic() < deadline, (tmp_path / "haproxy.log").read_text()
            time.sleep(0.05)
        yield Lab(names["lb"], names["client"], nodes, socket_path)
    finally:
        for process in processes:
            process.kill()  # by PID: `ip netns exec` execs the command itself
            process.wait(timeout=10)
        for ns in reversed(created):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)


def test_traffic_follows_the_hcnp_and_carries_the_client_address(lab: Lab) -> None:
    lab.set_hcnp("node2", 503)
    lab.wait_states({"node1": "UP", "node2": "DOWN"})
    answers = [lab.request() for _ in range(10)]
    assert {a.get("node") for a in answers} == {"node1"}, answers
    # PROXY v2: the pod sees HAProxy as TCP peer and the client's own address in the header.
    assert answers[0]["proxy"] is True
    assert answers[0]["client"] == CLIENT
    assert answers[0]["peer"] == "10.251.1.1"

    # The pod moves: node1's hcnp says 503, node2's 200.
    lab.set_hcnp("node1", 503)
    lab.set_hcnp("node2", 200)
    moved = lab.wait_states({"node1": "DOWN", "node2": "UP"})
    assert moved <= 2 * 1.0 + 1.0  # inter x fall (and rise) plus one interval of phase
    answers = [lab.request() for _ in range(10)]
    assert {a.get("node") for a in answers} == {"node2"}, answers
    assert answers[0]["client"] == CLIENT

    # Both healthy: round robin uses both; still the client address on each.
    lab.set_hcnp("node1", 200)
    lab.wait_states({"node1": "UP", "node2": "UP"})
    answers = [lab.request() for _ in range(10)]
    assert {a.get("node") for a in answers} == {"node1", "node2"}, answers


def test_health_checks_are_plain_http_and_the_agent_is_asked_per_service(lab: Lab) -> None:
    lab.wait_states({"node1": "UP", "node2": "UP"})
    time.sleep(1.5)  # a few checks and agent-checks
    for node, directory in lab.nodes.items():
        checks = [json.loads(line) for line in (directory / "checks.log").read_text().splitlines()]
        assert checks, node
        assert not any(c["proxy"] for c in checks)  # no PROXY header on checks, ever
        assert {c["line"] for c in checks} == {"GET / HTTP/1.0"}
        sent = [json.loads(line) for line in (directory / "agent.log").read_text().splitlines()]
        assert sent and set(sent) == {"default/python-lb\n"}
