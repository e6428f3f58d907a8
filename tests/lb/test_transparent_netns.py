"""Transparent mode for real: Debian's HAProxy, nftables and the agent in network namespaces,
one Ethernet segment as in a real rack (so the client is one hop from the node, and only the
return path keeps the reply from going straight to it):

    client 10.252.0.201 ─┐
    lb1    10.252.0.101 ─┤  (HAProxy + TPROXY rules; VIP 10.252.0.240 on lb1, then on lb2)
    lb2    10.252.0.102 ─┼─ bridge
    node1  10.252.0.11  ─┘  (the real agent: NodePort rules, hcnp, return path for lb1 + lb2)
      └─ pod 10.252.128.2: the plain `python3 -m http.server 31000` (no PROXY support)

The LBs get the rendered templates the haproxy role installs (haproxy.cfg, the TPROXY nft
table and its up/down script), and HAProxy runs as the haproxy user with the capabilities of
the role's systemd drop-in (setpriv stands in for systemd). Only namespaces this test creates
are used; everything is killed by PID and deleted, whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from nodeport_lb.loadbalancer import plan_haproxy
from nodeport_lb.templating import render_template
from tests.lb.conftest import HCNP, service
from tests.support.netlib import Lab, agent_cmd, http_get, lab_session, wait_for
from tests.support.objects import endpoint_slice

pytestmark = [
    pytest.mark.netns,
    pytest.mark.xdist_group("netns"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("haproxy") or not shutil.which("setpriv"),
        reason="needs root, haproxy and setpriv",
    ),
]

SUBNET = "10.252.0"
CLIENT = f"{SUBNET}.201"
LBS = {"lb1": f"{SUBNET}.101", "lb2": f"{SUBNET}.102"}
NODE = f"{SUBNET}.11"
VIP = f"{SUBNET}.240"
POD = "10.252.128.2"
POD_GATEWAY = "10.252.128.1"
NODE_PORT = 31001
AGENT_PORT = 10257
ACCESS_LINE = re.compile(r'^(\S+) - - \[[^]]+\] "GET (\S+) HTTP/1.1" 200')


@dataclass
class Rack:
    lab: Lab
    logs: Path  # pod.log (the plain app's access log), haproxy-lb*.log, agent.log
    haproxy: dict[str, subprocess.Popen[bytes]]
    haproxy_configs: dict[str, Path]
    caps: str
    user: str
    macs: dict[str, str]

    def ns(self, short: str) -> str:
        return self.lab.ns(short)

    def get(self, path: str) -> tuple[int, bytes]:
        status, _, body = http_get(self.ns("client"), VIP, 80, path, timeout=3.0)
        return status, body

    def pod_log(self) -> list[tuple[str, str]]:
        """(peer, path) of each request the plain app logged."""
        text = (self.logs / "pod.log").read_text()
        return [m.groups() for m in map(ACCESS_LINE.match, text.splitlines()) if m]

    def start_haproxy(self, lb: str) -> None:
        self.haproxy[lb] = self.lab.start(
            self.ns(lb),
            "setpriv",
            f"--reuid={self.user}",
            f"--regid={self.user}",
            "--clear-groups",
            f"--inh-caps={self.caps}",
            f"--ambient-caps={self.caps}",
            f"--bounding-set=-all,{self.caps}",
            "haproxy",
            "-db",
            "-f",
            str(self.haproxy_configs[lb]),
            log_name=f"haproxy-{lb}.log",
        )

    def move_vip(self, to: str, away_from: str) -> None:
        """What keepalived does on failover (the gratuitous ARP: the client forgets the old
        owner's link-layer address)."""
        self.lab.run(self.ns(away_from), "ip", "addr", "del", f"{VIP}/32", "dev", "eth0")
        self.lab.run(self.ns(to), "ip", "addr", "add", f"{VIP}/32", "dev", "eth0")
        self.lab.run(self.ns("client"), "ip", "neigh", "flush", VIP)

    def check_sources(self) -> dict[str, int]:
        """Health checks the node received, by source address (nft counters)."""
        out = self.lab.run(self.ns("node1"), "nft", "list", "table", "inet", "checks").stdout
        return {
            src: int(packets)
            for src, packets in re.findall(r"ip saddr (\S+) .*?counter packets (\d+)", out)
        }


def _drop_in_capabilities() -> tuple[str, str]:
    """(setpriv capability list, user) from the role's haproxy.service drop-in."""
    text = render_template(
        "haproxy-nodeport-lb.conf.j2",
        user="haproxy",
        group="haproxy",
        pidfile="/run/haproxy/haproxy.pid",
    )
    ambient = re.search(r"^AmbientCapabilities=(.*)$", text, re.M)
    user = re.search(r"^User=(.*)$", text, re.M)
    assert ambient and user, text
    caps = ",".join("+" + c.removeprefix("CAP_").lower() for c in ambient.group(1).split())
    return caps, user.group(1)


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[Rack]:
    # HAProxy runs as an unprivileged user: its files must be readable outside root's tmp
    workdir = Path(tempfile.mkdtemp(prefix="nplb-transparent-"))
    workdir.chmod(0o755)
    try:
        with lab_session(tmp_path) as lab:
            yield _build(lab, workdir, tmp_path)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _build(lab: Lab, workdir: Path, tmp_path: Path) -> Rack:
    bridge = lab.add_netns("br")
    lab.run(bridge, "ip", "link", "add", "br0", "type", "bridge")
    lab.run(bridge, "ip", "link", "set", "br0", "up")
    hosts = {"client": CLIENT, **LBS, "node1": NODE}
    macs = {}
    for index, (name, address) in enumerate(hosts.items()):
        ns = lab.add_netns(name)
        lab.link(ns, "eth0", bridge, f"p{index}")
        lab.run(bridge, "ip", "link", "set", f"p{index}", "master", "br0")
        lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        lab.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        macs[name] = lab.run(ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
    # the pod behind node1, wired as a ptp CNI does
    pod = lab.add_netns("pod")
    lab.link(lab.ns("node1"), "podveth", pod, "eth0")
    lab.run(pod, "ip", "addr", "add", f"{POD}/32", "dev", "eth0")
    lab.run(pod, "ip", "route", "add", POD_GATEWAY, "dev", "eth0", "scope", "link")
    lab.run(pod, "ip", "route", "add", "default", "via", POD_GATEWAY)
    lab.run(lab.ns("node1"), "ip", "addr", "add", f"{POD_GATEWAY}/32", "dev", "podveth")
    lab.run(lab.ns("node1"), "ip", "route", "add", f"{POD}/32", "dev", "podveth")
    lab.start(
        pod,
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "31000",
        "--bind",
        POD,
        "--directory",
        str(workdir),
        log_name="pod.log",
    )
    (workdir / "index.html").write_text("plain app\n")

    # node1: the agent, with the Service, its pod and both load balancers
    store = tmp_path / "store"
    store.mkdir()
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "python-lb", "namespace": "default"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "healthCheckNodePort": HCNP,
            "selector": {"app": "python"},
            "ports": [{"name": "http", "port": 80, "targetPort": 31000, "nodePort": NODE_PORT}],
        },
    }
    slice_ = endpoint_slice(
        "python-lb",
        31000,
        [{"addresses": [POD], "nodeName": "node1", "conditions": {"ready": True}}],
        port_name="http",
    )
    (store / "python-lb.yaml").write_text(yaml.safe_dump_all([svc, slice_]))
    _node_check_counters(lab)
    lab.start(
        lab.ns("node1"),
        *agent_cmd(
            "node1",
            store,
            "--agent-check-port",
            str(AGENT_PORT),
            *(
                arg
                for lb, address in LBS.items()
                for arg in ("--load-balancer", f"{lb},{macs[lb]},{address}")
            ),
        ),
        log_name="agent.log",
    )

    # the load balancers: TPROXY table + rule + route from the role's templates, HAProxy
    caps, user = _drop_in_capabilities()
    configs = {}
    for lb in LBS:
        run_dir = workdir / lb  # each HAProxy's own runtime directory, as systemd gives it
        run_dir.mkdir()
        shutil.chown(run_dir, user, user)
        plan = plan_haproxy(
            [service(load_balancer={})],  # the defaults: transparent for eTP Local
            [{"name": "node1", "address": NODE}],
            [VIP],
            {
                "stats_socket": str(run_dir / "admin.sock"),
                "log": "stderr format raw local0",
                "chroot": str(run_dir),
                "agent_check_port": AGENT_PORT,
                "agent_inter": "500ms",
                "maxconn": 1000,
            },
        ).to_dict()
        assert plan["transparent"]
        configs[lb] = workdir / f"haproxy-{lb}.cfg"
        configs[lb].write_text(render_template("haproxy.cfg.j2", plan=plan))
        check = subprocess.run(
            ["haproxy", "-c", "-f", str(configs[lb])], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    nft_file = workdir / "tproxy.nft"
    nft_file.write_text(render_template("nodeport-lb-tproxy.nft.j2", tproxy=plan["tproxy"]))
    script = workdir / "nodeport-lb-tproxy"
    script.write_text(
        render_template("nodeport-lb-tproxy.sh.j2", tproxy=plan["tproxy"], nft_file=nft_file)
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    for lb in LBS:
        lab.run(lab.ns(lb), "sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2")
        lab.run(lab.ns(lb), "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
        lab.run(lab.ns(lb), str(script), "up")
        lab.run(lab.ns(lb), str(script), "up")  # a second run changes nothing, fails nothing
    lab.run(lab.ns("lb1"), "ip", "addr", "add", f"{VIP}/32", "dev", "eth0")
    rack = Rack(lab, tmp_path, {}, configs, caps, user, macs)
    for lb in LBS:
        rack.start_haproxy(lb)
    return rack


def _node_check_counters(lab: Lab) -> None:
    """Count the health checks node1 gets, by source: the LBs' own addresses or any other."""
    rules = "\n".join(
        f"        tcp dport {HCNP} ip saddr {address} counter" for address in LBS.values()
    )
    lab.run(
        lab.ns("node1"),
        "sh",
        "-c",
        "nft -f - <<'EOF'\n"
        "table inet checks {\n"
        "    chain input {\n"
        "        type filter hook input priority 10; policy accept;\n"
        f"{rules}\n"
        f"        tcp dport {HCNP} ip saddr != {{ {', '.join(LBS.values())} }} "
        "ip saddr 0.0.0.0/0 counter\n"
        "    }\n"
        "}\n"
        "EOF",
    )


def _wait_served(rack: Rack, path: str) -> tuple[int, bytes]:
    return wait_for(lambda: rack.get(path), timeout=15.0, interval=0.2)


def test_plain_app_logs_the_clients_address_through_either_load_balancer(rack: Rack) -> None:
    status, body = _wait_served(rack, "/?via=lb1")
    assert (status, body) == (200, b"plain app\n")
    assert ("10.252.0.201", "/?via=lb1") in rack.pod_log()
    assert not any(peer in LBS.values() for peer, _ in rack.pod_log())

    # HAProxy kept its capabilities as the unprivileged user, without a `user` line
    status_file = Path(f"/proc/{rack.haproxy['lb1'].pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status_file, re.M)
    assert uid and int(uid.group(1)) != 0

    # the master LB crashes: its connections go with it; the VIP moves; lb2's mark and
    # route were on the node ahead of time, so the first request through lb2 works
    rack.haproxy["lb1"].kill()
    rack.haproxy["lb1"].wait()
    rack.move_vip(to="lb2", away_from="lb1")
    status, body = _wait_served(rack, "/?via=lb2")
    assert (status, body) == (200, b"plain app\n")
    assert ("10.252.0.201", "/?via=lb2") in rack.pod_log()
    assert not any(peer in LBS.values() for peer, _ in rack.pod_log())


def test_health_checks_come_from_the_load_balancers_own_addresses(rack: Rack) -> None:
    _wait_served(rack, "/")
    sources = rack.check_sources()
    assert sources.get(LBS["lb1"], 0) > 0 and sources.get(LBS["lb2"], 0) > 0, sources
    assert sources.get("0.0.0.0/0", 0) == 0, sources


def test_each_lb_has_its_own_mark_and_table_on_the_node(rack: Rack) -> None:
    _wait_served(rack, "/")
    table = rack.lab.run(
        rack.ns("node1"), "nft", "list", "table", "inet", "nodeport-lb-return-path"
    ).stdout
    for lb in LBS:
        assert f"ether saddr {rack.macs[lb]}" in table, table
    rules = rack.lab.run(rack.ns("node1"), "ip", "-4", "rule", "show").stdout
    assert "fwmark 0x100000/0xf00000 lookup 4201" in rules, rules
    assert "fwmark 0x200000/0xf00000 lookup 4202" in rules, rules
    for number, lb in ((4201, "lb1"), (4202, "lb2")):
        routes = rack.lab.run(
            rack.ns("node1"), "ip", "-4", "route", "show", "table", str(number)
        ).stdout
        assert f"default via {LBS[lb]} dev eth0 onlink" in routes, routes
    # the client reaching the node directly is untouched: no LB, no mark, a direct reply
    status, _, _ = http_get(rack.ns("client"), NODE, NODE_PORT, "/?via=direct", timeout=3.0)
    assert status == 200
    assert ("10.252.0.201", "/?via=direct") in rack.pod_log()
