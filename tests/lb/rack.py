"""A rack in network namespaces for transparent mode: Debian's HAProxy, nftables and the real
agent on one Ethernet segment (so the client is one hop from the node, and only the return
path keeps the reply from going straight to it). Used by tests/lb/test_transparent_netns.py
and bench/transparent.py.

    client 10.252.0.201 ─┐
    lb1    10.252.0.101 ─┤  (HAProxy + TPROXY rules; the VIP 10.252.0.240 on lb1)
    lb2    10.252.0.102 ─┼─ bridge
    node1  10.252.0.11  ─┘  (the agent: NodePort rules, hcnp, return path for lb1 and lb2)
      └─ pod 10.252.128.2:31000, the plain `python3 -m http.server` or the lab's echo

The LBs get the files the haproxy role renders (haproxy.cfg, the TPROXY nft table and its
up/down script), and HAProxy runs as the haproxy user with the capabilities of the role's
systemd drop-in (setpriv stands in for systemd). Only namespaces made through ``Lab`` are used;
the caller's ``lab_session`` kills every process by PID and deletes them, whatever happens.
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nodeport_lb.loadbalancer import plan_haproxy
from nodeport_lb.templating import render_template
from tests.support.netlib import Lab, agent_cmd, http_get, sh
from tests.support.objects import endpoint_slice

SUBNET = "10.252.0"
CLIENT = f"{SUBNET}.201"
LBS = {"lb1": f"{SUBNET}.101", "lb2": f"{SUBNET}.102"}
NODE = f"{SUBNET}.11"
VIP = f"{SUBNET}.240"
POD = "10.252.128.2"
POD_GATEWAY = "10.252.128.1"
POD_PORT = 31000
AGENT_PORT = 10257
ACCESS_LINE = re.compile(r'^(\S+) - - \[[^]]+\] "GET (\S+) HTTP/1.1" 200')


@dataclass(frozen=True)
class RackService:
    """One LoadBalancer + Local Service on the pod, fronted on VIP:port."""

    name: str
    port: int
    node_port: int
    hcnp: int
    load_balancer: dict[str, Any]  # the Service's load_balancer: settings ({}: the defaults)


DEFAULT_SERVICES = (RackService("python-lb", 80, 31001, 31897, {}),)


@dataclass
class Rack:
    lab: Lab
    logs: Path  # pod.log (the app's output), haproxy-lb*.log, agent.log
    haproxy: dict[str, subprocess.Popen[bytes]]
    haproxy_configs: dict[str, Path]
    caps: str
    user: str
    macs: dict[str, str]
    plan: dict[str, Any]

    def ns(self, short: str) -> str:
        return self.lab.ns(short)

    def get(self, path: str, port: int = 80) -> tuple[int, bytes]:
        status, _, body = http_get(self.ns("client"), VIP, port, path, timeout=3.0)
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
        """Health checks node1 received, by source address (nft counters)."""
        out = self.lab.run(self.ns("node1"), "nft", "list", "table", "inet", "checks").stdout
        return {
            src: int(packets)
            for src, packets in re.findall(r"ip saddr (\S+) .*?counter packets (\d+)", out)
        }


def drop_in_capabilities() -> tuple[str, str]:
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


def build_rack(
    lab: Lab,
    workdir: Path,
    logs: Path,
    *,
    app: str = "http-server",
    services: Sequence[RackService] = DEFAULT_SERVICES,
    haproxy_settings: dict[str, Any] | None = None,
) -> Rack:
    """Wire the rack, start the pod (``app``: http-server or echo), the agent and HAProxy on
    both LBs. ``workdir`` must be readable by the haproxy user (not root's pytest tmp)."""
    bridge = lab.add_netns("br")
    lab.run(bridge, "ip", "link", "add", "br0", "type", "bridge")
    lab.run(bridge, "ip", "link", "set", "br0", "up")
    macs = {}
    for index, (name, address) in enumerate({"client": CLIENT, **LBS, "node1": NODE}.items()):
        ns = lab.add_netns(name)
        lab.link(ns, "eth0", bridge, f"p{index}")
        lab.run(bridge, "ip", "link", "set", f"p{index}", "master", "br0")
        lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        lab.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        macs[name] = lab.run(ns, "cat", "/sys/class/net/eth0/address").stdout.strip()
    _start_pod(lab, workdir, app)
    _start_agent(lab, logs, services, macs)

    caps, user = drop_in_capabilities()
    configs = {}
    plan: dict[str, Any] = {}
    for lb in LBS:
        run_dir = workdir / lb  # each HAProxy's own runtime directory, as systemd gives it
        run_dir.mkdir()
        shutil.chown(run_dir, user, user)
        plan = plan_haproxy(
            [_applied(svc) for svc in services],
            [{"name": "node1", "address": NODE}],
            [VIP],
            {
                "stats_socket": str(run_dir / "admin.sock"),
                "log": "stderr format raw local0",
                "chroot": str(run_dir),
                "agent_check_port": AGENT_PORT,
                "agent_inter": "500ms",
                "maxconn": 1000,
                **(haproxy_settings or {}),
            },
        ).to_dict()
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
        # the haproxy role's sysctls
        lab.run(lab.ns(lb), "sysctl", "-qw", "net.ipv4.conf.all.arp_announce=2")
        lab.run(lab.ns(lb), "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1")
        lab.run(lab.ns(lb), str(script), "up")
        lab.run(lab.ns(lb), str(script), "up")  # a second run changes nothing, fails nothing
    lab.run(lab.ns("lb1"), "ip", "addr", "add", f"{VIP}/32", "dev", "eth0")
    rack = Rack(lab, logs, {}, configs, caps, user, macs, plan)
    for lb in LBS:
        rack.start_haproxy(lb)
    return rack


def _applied(svc: RackService) -> dict[str, Any]:
    """The Service as the Services role publishes it (nodeport_lb_applied_services)."""
    return {
        "name": svc.name,
        "namespace": "default",
        "type": "LoadBalancer",
        "external_traffic_policy": "Local",
        "ports": [
            {"name": "http", "port": svc.port, "node_port": svc.node_port, "protocol": "TCP"}
        ],
        "health_check_node_port": svc.hcnp,
        "load_balancer": svc.load_balancer,
    }


def _start_pod(lab: Lab, workdir: Path, app: str) -> None:
    """The pod behind node1, wired as a ptp CNI does."""
    pod = lab.add_netns("pod")
    node = lab.ns("node1")
    lab.link(node, "podveth", pod, "eth0")
    lab.run(pod, "ip", "addr", "add", f"{POD}/32", "dev", "eth0")
    lab.run(pod, "ip", "route", "add", POD_GATEWAY, "dev", "eth0", "scope", "link")
    lab.run(pod, "ip", "route", "add", "default", "via", POD_GATEWAY)
    lab.run(node, "ip", "addr", "add", f"{POD_GATEWAY}/32", "dev", "podveth")
    lab.run(node, "ip", "route", "add", f"{POD}/32", "dev", "podveth")
    if app == "http-server":
        (workdir / "index.html").write_text("plain app\n")
        command = [
            sys.executable, "-u", "-m", "http.server", str(POD_PORT), "--bind", POD,
            "--directory", str(workdir),
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "nodeport_lb.lab.echo", "--name", "pod", "--node", "node1",
            "--port", str(POD_PORT), "--host", POD,
        ]  # fmt: skip
    lab.start(pod, *command, log_name="pod.log")


def _start_agent(
    lab: Lab, logs: Path, services: Sequence[RackService], macs: dict[str, str]
) -> None:
    """node1's agent with the Services, their pod and both load balancers; and nft counters
    of the health checks node1 receives, by source (the LBs' own addresses or any other)."""
    store = logs / "store"
    store.mkdir()
    objects = []
    for svc in services:
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": svc.name, "namespace": "default"},
                "spec": {
                    "type": "LoadBalancer",
                    "externalTrafficPolicy": "Local",
                    "healthCheckNodePort": svc.hcnp,
                    "selector": {"app": "python"},
                    "ports": [
                        {
                            "name": "http",
                            "port": svc.port,
                            "targetPort": POD_PORT,
                            "nodePort": svc.node_port,
                        }
                    ],
                },
            }
        )
        objects.append(
            endpoint_slice(
                svc.name,
                POD_PORT,
                [{"addresses": [POD], "nodeName": "node1", "conditions": {"ready": True}}],
                port_name="http",
            )
        )
    (store / "services.yaml").write_text(yaml.safe_dump_all(objects))
    hcnps = ", ".join(str(svc.hcnp) for svc in services)
    rules = "\n".join(
        f"        tcp dport {{ {hcnps} }} ip saddr {address} counter" for address in LBS.values()
    )
    others = ", ".join(LBS.values())
    sh(
        "ip",
        "netns",
        "exec",
        lab.ns("node1"),
        "nft",
        "-f",
        "-",
        input=(
            "table inet checks {\n    chain input {\n"
            "        type filter hook input priority 10; policy accept;\n"
            f"{rules}\n"
            f"        tcp dport {{ {hcnps} }} ip saddr != {{ {others} }} "
            "ip saddr 0.0.0.0/0 counter\n    }\n}\n"
        ),
    )
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
