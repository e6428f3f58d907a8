"""Questions asked on the hosts (through testinfra, so any inventory's connection works).

Shared by the suite's checks and ``nodeport-lb summary``. Only tools every host already has
are used: Python 3 (Ansible needs it), bash, curl on clients, ip, nft.
"""

from __future__ import annotations

import atexit
import configparser
import functools
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import testinfra
from testinfra.host import Host
from testinfra.utils.ansible_runner import get_ansible_config, get_ansible_host

from nodeport_lb.verify.haproxy import parse_servers_state, parse_show_stat
from nodeport_lb.verify.inventory import Inventory

DEFAULT_STATS_SOCKET = "/run/haproxy/admin.sock"

# HAProxy's runtime API without socat: a few lines of the host's Python.
_ASK_SOCKET = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_UNIX)\n"
    "s.connect(sys.argv[1])\n"
    "s.sendall(sys.argv[2].encode()+b'\\n')\n"
    "sys.stdout.write(b''.join(iter(lambda:s.recv(65536),b'')).decode())\n"
)


@dataclass(frozen=True)
class Target:
    """One inventory host and how to run commands on it."""

    name: str
    host: Host
    address: str


_SSH_CONFIG = threading.Lock()


def ssh_config() -> str:
    # locked: hosts are reached from threads, and a second config would be a second socket
    # directory, every host's connection opened once more
    with _SSH_CONFIG:
        return _ssh_config()


@functools.cache
def _ssh_config() -> str:
    """An ssh config that gives testinfra's connections a socket to share, so that each host
    gets one SSH connection for the run instead of a handshake per command (0.2 s against
    0.04 s on the lab). testinfra asks for ControlMaster but leaves the socket's path to
    ssh's own config, where there is usually none; this one names it and then includes the
    user's and the system's config. The masters are told to exit when the process ends."""
    directory = Path(tempfile.mkdtemp(prefix="nplb-ssh-"))  # short: a socket path is ~100 bytes
    config = directory / "config"
    config.write_text(
        f"ControlPath {directory}/%C\nInclude ~/.ssh/config\nInclude /etc/ssh/ssh_config\n"
    )
    atexit.register(_close_ssh_masters, directory)
    return str(config)


def _close_ssh_masters(directory: Path) -> None:
    for path in directory.iterdir():
        if path.is_socket():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={path}", "-O", "exit", "nodeport-lb-verify"],
                capture_output=True,
                timeout=10,
                check=False,
            )
    shutil.rmtree(directory, ignore_errors=True)


@functools.cache
def _ansible_config() -> configparser.ConfigParser:
    return get_ansible_config()


def _host(inventory: Inventory, name: str) -> Host:
    """The host as testinfra's ansible:// backend would reach it, from the inventory already
    read: that backend reads it once more with its own ansible-inventory (0.7 s) first. A
    connection type testinfra cannot speak itself still goes through that backend (Ansible
    runs each command)."""
    found = get_ansible_host(_ansible_config(), inventory.listed(), name, ssh_config=ssh_config())
    if found is not None:
        return found
    options: dict[str, Any] = {"ssh_config": ssh_config()}
    if inventory.sources:
        options["ansible_inventory"] = inventory.sources[0]
    return testinfra.get_host(f"ansible://{name}", **options)


def target(inventory: Inventory, name: str) -> Target:
    if name == "localhost" and name not in inventory.hostvars:
        return Target(name, testinfra.get_host("local://"), "127.0.0.1")
    vars_ = inventory.vars_of(name)
    # the address the roles use: towards the nodes for a load balancer, towards the LBs for a node
    own = "nodeport_lb_lb_address" if name in inventory.hosts("lbs") else "nodeport_lb_node_address"
    address = str(vars_.get(own) or vars_.get("ansible_host") or name)
    return Target(name, _host(inventory, name), address)


def run(target: Target, command: str) -> tuple[int, str, str]:
    result = target.host.run(command)
    return result.rc, result.stdout, result.stderr


def runtime_api_command(socket: str, question: str) -> str:
    """A shell command asking HAProxy's runtime API one question with the host's Python (no
    socat needed on the load balancer)."""
    return f"python3 -c {shlex.quote(_ASK_SOCKET)} {shlex.quote(socket)} {shlex.quote(question)}"


def haproxy_runtime(
    lb: Target, socket: str = DEFAULT_STATS_SOCKET
) -> tuple[dict[tuple[str, str], dict[str, str]], dict[tuple[str, str], dict[str, str]]]:
    """(show stat rows, show servers state rows), both keyed by (backend, server)."""
    command = "; echo '@@'; ".join(
        runtime_api_command(socket, q) for q in ("show stat", "show servers state")
    )
    rc, out, err = run(lb, command)
    if rc != 0 or "@@" not in out:
        raise RuntimeError(f"{lb.name}: HAProxy runtime API {socket} did not answer: {err.strip()}")
    stat, state = out.split("@@", 1)
    return parse_show_stat(stat), parse_servers_state(state)


def local_addresses(target: Target) -> set[str]:
    rc, out, err = run(target, "ip -j -4 addr show")
    if rc != 0:
        raise RuntimeError(f"{target.name}: ip addr failed: {err.strip()}")
    return {a["local"] for link in json.loads(out) for a in link.get("addr_info", [])}


def link_layer_address(target: Target) -> str:
    """The MAC of the interface holding the target's address ('' when none does)."""
    rc, out, _ = run(target, "ip -j -4 addr show")
    if rc != 0:
        return ""
    for link in json.loads(out or "[]"):
        if any(a.get("local") == target.address for a in link.get("addr_info", [])):
            rc, mac, _ = run(target, f"cat /sys/class/net/{shlex.quote(link['ifname'])}/address")
            return mac.strip() if rc == 0 else ""
    return ""


def source_address(client: Target, destination: str) -> str:
    """The address the client's packets to ``destination`` leave with."""
    rc, out, _ = run(client, f"ip -4 -o route get {shlex.quote(destination)}")
    words = out.split()
    return words[words.index("src") + 1] if rc == 0 and "src" in words else client.address


AGENT_UNIT = "nodeport-lb-agent.service"
# one round trip: the agent's command line, the nftables tables, kube-proxy's iptables chain,
# its IPVS interface (tools a node may lack answer nothing)
_DATAPLANE_PROBE = (
    f"systemctl show -p ExecStart --value {AGENT_UNIT} 2>/dev/null; echo @@; "
    "nft list tables 2>/dev/null; echo @@; "
    "iptables-save -t nat 2>/dev/null | grep -c '^:KUBE-NODEPORTS '; echo @@; "
    "test -e /sys/class/net/kube-ipvs0 && echo ipvs"
)


@dataclass(frozen=True)
class NodeDataplane:
    """Who serves a node's nodePorts: the agent (standalone) or kube-proxy beside it."""

    agent_mode: str  # standalone | companion | "" (no agent unit)
    agent_table: bool  # the agent's own table inet nodeport-lb is there
    kube_proxy: str  # how kube-proxy shows itself ("" when it does not): "nftables", ...

    def describe(self) -> str:
        if self.agent_mode == "standalone":
            extra = f", next to kube-proxy ({self.kube_proxy})!" if self.kube_proxy else ""
            return f"the nodeport-lb agent (standalone mode, table inet nodeport-lb){extra}"
        proxy = f"kube-proxy ({self.kube_proxy})" if self.kube_proxy else "no kube-proxy found"
        if self.agent_mode == "companion":
            return f"{proxy}, with the nodeport-lb agent as its companion (agent-check weights)"
        return f"{proxy}, no nodeport-lb agent"


def node_dataplane(node: Target) -> NodeDataplane:
    _, out, _ = run(node, f"sh -c {shlex.quote(_DATAPLANE_PROBE)}")
    exec_start, tables, iptables, ipvs = ([*out.split("@@"), "", "", ""])[:4]
    words = exec_start.replace(";", " ").split()
    mode = ""
    if "agent" in words:  # an agent without --mode predates the modes: standalone
        mode = words[words.index("--mode") + 1] if "--mode" in words[:-1] else "standalone"
    table_lines = {line.strip() for line in tables.splitlines()}
    shows = []
    if {"table ip kube-proxy", "table ip6 kube-proxy"} & table_lines:
        shows.append("nftables")
    if iptables.strip() not in ("", "0"):
        shows.append("iptables")
    if ipvs.strip() == "ipvs":
        shows.append("IPVS")
    return NodeDataplane(mode, "table inet nodeport-lb" in table_lines, ", ".join(shows))


def agent_check(node: Target, port: int, service_key: str, timeout: float = 3) -> str:
    """The agent's HAProxy agent-check answer for a Service, asked on the node's address (as
    the load balancers ask) from the node itself."""
    script = (
        "import socket,sys\n"
        "s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=float(sys.argv[4]))\n"
        "s.sendall(sys.argv[3].encode()+b'\\n')\n"
        "sys.stdout.write(s.recv(200).decode())\n"
    )
    values = (checked_address(node.address), checked_port(port), service_key, float(timeout))
    arguments = " ".join(shlex.quote(str(a)) for a in values)
    command = f"python3 -c {shlex.quote(script)} {arguments}"
    rc, out, err = run(node, command)
    if rc != 0:
        lines = err.strip().splitlines()
        raise ConnectionError(lines[-1] if lines else f"exit {rc}")
    return out.strip()


@dataclass(frozen=True)
class HttpAnswer:
    ok: bool  # an HTTP answer came back
    status: int
    body: str
    error: str

    def json(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def checked_address(value: object) -> str:
    """An IP address, canonical; anything else (it came from an inventory or the control
    plane) is refused before it is put into a command."""
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


def checked_port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return value


def http_get(target: Target, address: str, port: int, timeout: float = 3) -> HttpAnswer:
    url = shlex.quote(f"http://{_url_host(address)}:{checked_port(port)}/")
    seconds = shlex.quote(str(float(timeout)))
    rc, out, err = run(target, f"curl -sS -m {seconds} -w '\\n%{{http_code}}' {url}")
    body, _, code = out.rpartition("\n")
    if rc != 0:
        return HttpAnswer(False, 0, "", err.strip() or f"curl exit {rc}")
    return HttpAnswer(True, int(code) if code.isdigit() else 0, body, "")


def tcp_connects(target: Target, destinations: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of ``destinations`` accept a TCP connection within 1 s (probed in parallel)."""
    if not destinations:
        return set()
    # each destination is checked, then passed as an argument, never as script text
    probes = " ".join(
        shlex.quote(f"{checked_address(a)}/{checked_port(p)}") for a, p in destinations
    )
    script = (
        'for t in "$@"; do '
        '(timeout 1 bash -c \'exec 3<>"/dev/tcp/$0"\' "$t" 2>/dev/null && echo "$t") & '
        "done; wait"
    )
    _, out, _ = run(target, f"bash -c {shlex.quote(script)} probe {probes}")
    found = set()
    for line in out.split():
        address, _, port = line.partition("/")
        found.add((address, int(port)))
    return found


def _url_host(address: str) -> str:
    """An IP address as a URL's host (IPv6 in brackets), or a host name checked as one."""
    try:
        parsed = ipaddress.ip_address(str(address))
    except ValueError:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?", str(address)):
            raise ValueError(f"{address!r} is not an address or a host name") from None
        return str(address)
    return f"[{parsed}]" if parsed.version == 6 else str(parsed)
