"""Which dataplane serves nodePorts on this node: the agent itself, or kube-proxy (or another
proxy that does kube-proxy's job).

The agent's two modes follow from it:

- *standalone*: nothing else serves nodePorts here, so the agent programs the NodePort rules
  and answers the healthCheckNodePorts and kube-proxy's /healthz itself;
- *companion*: kube-proxy (or a replacement such as an eBPF dataplane) already does, so the
  agent only adds what it does not: agent-check weights, drain, metrics.

``python -m nodeport_lb.agent.preflight`` prints ``{"signs": [...], "mode": ...}`` for the
node_proxy role, which runs it on each node before it writes the agent's unit.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from nodeport_lb.defaults import PROXY_HEALTHZ_PORT

STANDALONE = "standalone"
COMPANION = "companion"
MODES = (STANDALONE, COMPANION)
_TCP_LISTEN = "0A"
# kube-proxy's nftables mode makes "ip kube-proxy" and "ip6 kube-proxy"
KUBE_PROXY_TABLE_FAMILIES = ("ip", "ip6", "inet")


def dataplane_signs(
    nft: str = "nft",
    proc: Path = Path("/proc"),
    sys_net: Path = Path("/sys/class/net"),
    iptables_save: str = "iptables-save",
) -> list[str]:
    """Signs that kube-proxy or another service proxy runs here (empty: none in sight)."""
    signs = []
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "kube-proxy" and _in_our_netns(comm.parent, proc):
                signs.append(f"a kube-proxy process is running (pid {comm.parent.name})")
                break
        except OSError:
            continue  # the process ended while we looked
    # asked for by name: nft lists tables by fetching every table's content first, which was
    # a third of a second at every start next to the agent's own table of 10,000 Services
    for family in KUBE_PROXY_TABLE_FAMILIES:
        listing = _command_output([nft, "list", "table", family, "kube-proxy"])
        if listing.startswith(f"table {family} kube-proxy"):
            signs.append(f"kube-proxy's nftables table is present (table {family} kube-proxy)")
    nat = _command_output([iptables_save, "-t", "nat"])
    chains = [c for c in ("KUBE-SERVICES", "KUBE-NODEPORTS") if f":{c} " in nat]
    if chains:
        signs.append(f"kube-proxy's iptables chains are present ({', '.join(chains)})")
    if (sys_net / "kube-ipvs0").exists() or _ipvs_has_services(proc):
        signs.append("kube-proxy's IPVS dataplane is present (kube-ipvs0 or IPVS services)")
    holder = _listener_owner(PROXY_HEALTHZ_PORT, proc)
    if holder is not None and not _is_our_agent(holder, proc):
        name, pid = holder
        signs.append(
            f"port {PROXY_HEALTHZ_PORT} (kube-proxy's /healthz) is held by {name} (pid {pid})"
        )
    return signs


def _in_our_netns(process: Path, proc: Path) -> bool:
    """A kube-proxy in another network namespace serves another node's nodePorts (a
    container, a test's namespace on a shared machine); when the kernel does not say, it
    counts."""
    try:
        return os.readlink(process / "ns" / "net") == os.readlink(proc / "self" / "ns" / "net")
    except OSError:
        return True


def recommended_mode(signs: list[str]) -> str:
    return COMPANION if signs else STANDALONE


def _command_output(argv: list[str]) -> str:
    """A probe whose tool is missing finds nothing (a node without nft has no nft table)."""
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _ipvs_has_services(proc: Path) -> bool:
    try:
        lines = (proc / "net/ip_vs").read_text().splitlines()
    except OSError:
        return False
    return any(line.startswith(("TCP ", "UDP ", "SCTP ")) for line in lines)


def _listening_inodes(port: int, proc: Path) -> set[str]:
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            rows = (proc / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            listening = len(fields) > 9 and fields[3] == _TCP_LISTEN
            if listening and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _listener_owner(port: int, proc: Path) -> tuple[str, int] | None:
    """(command name, pid) of the process listening on TCP ``port``, if any."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            for fd in fd_dir.iterdir():
                if str(fd.readlink()) in wanted:
                    pid = int(fd_dir.parent.name)
                    return (fd_dir.parent / "comm").read_text().strip(), pid
        except OSError:
            continue
    return ("an unknown process", 0)


def _is_our_agent(holder: tuple[str, int], proc: Path) -> bool:
    """The agent in standalone mode holds the proxy healthz port itself: not another dataplane."""
    _name, pid = holder
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    words = [Path(a.decode(errors="replace")).name for a in argv]
    return "agent" in words and any(w in ("nodeport-lb", "nodeport_lb") for w in words)


if __name__ == "__main__":
    found = dataplane_signs()
    print(json.dumps({"signs": found, "mode": recommended_mode(found)}))
