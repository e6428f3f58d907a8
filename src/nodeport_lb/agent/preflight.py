"""Refuse to start where a running kube-proxy would fight the agent for the same ports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def kube_proxy_conflicts(nft: str = "nft") -> list[str]:
    """Reasons the agent must not run here (empty: no kube-proxy in sight)."""
    reasons = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "kube-proxy":
                reasons.append(f"a kube-proxy process is running (pid {comm.parent.name})")
                break
        except OSError:
            continue  # the process ended while we looked
    tables = subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout
    for line in tables.splitlines():
        if line.split()[-1:] == ["kube-proxy"]:
            reasons.append(f"kube-proxy's nftables table is present ({line.strip()})")
    iptables_save = shutil.which("iptables-save")
    if iptables_save:
        nat = subprocess.run([iptables_save, "-t", "nat"], capture_output=True, text=True).stdout
        if ":KUBE-NODEPORTS" in nat:
            reasons.append("kube-proxy's iptables chain KUBE-NODEPORTS is present")
    return reasons
