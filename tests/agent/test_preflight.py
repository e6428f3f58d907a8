"""Finding the node's dataplane from what kube-proxy leaves visible: its process, its nftables
table, its iptables/IPVS rules, a listener on :10256. The /proc files are laid out as the
kernel writes them, in a directory the test owns; the real kernel case is in tests/netns."""

from __future__ import annotations

import os
from pathlib import Path

from nodeport_lb.agent.preflight import COMPANION, STANDALONE, dataplane_signs, recommended_mode

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)


def fake_proc(
    tmp_path: Path, processes: dict[int, tuple[str, list[str]]], listen: dict[int, int]
) -> Path:
    """``processes``: pid -> (comm, argv); ``listen``: TCP port -> pid holding it."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    rows = []
    for index, (port, pid) in enumerate(listen.items()):
        inode = 40000 + index
        rows.append(
            f"   {index}: 00000000:{port:04X} 00000000:0000 0A 00000000:00000000 00:00000000 "
            f"00000000     0        0 {inode} 1 0000000000000000 100 0 0 10 0\n"
        )
        fd_dir = proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True, exist_ok=True)
        os.symlink(f"socket:[{inode}]", fd_dir / str(3 + index))
    (proc / "net" / "tcp").write_text(TCP_HEADER + "".join(rows))
    for pid, (comm, argv) in processes.items():
        (proc / str(pid)).mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return proc


def fake_nft(tmp_path: Path, tables: str) -> str:
    """``nft list table FAMILY NAME`` on a node with ``tables`` ("table ip kube-proxy\\n")."""
    script = tmp_path / "nft"
    script.write_text(f"#!/bin/sh\nprintf '{tables}' | grep -x \"table $3 $4\"\n")
    script.chmod(0o755)
    return str(script)


def fake_iptables_save(tmp_path: Path, nat: str) -> str:
    script = tmp_path / "iptables-save"
    script.write_text(f"#!/bin/sh\nprintf '{nat}'\n")
    script.chmod(0o755)
    return str(script)


def signs(tmp_path: Path, proc: Path, tables: str = "", nat: str = "*nat\\nCOMMIT\\n") -> list[str]:
    return dataplane_signs(
        fake_nft(tmp_path, tables),
        proc,
        tmp_path / "sys-class-net",
        fake_iptables_save(tmp_path, nat),
    )


def test_a_bare_node_is_standalone(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {1: ("systemd", ["/sbin/init"])}, {})
    found = signs(tmp_path, proc, "table inet filter\\n")
    assert found == []
    assert recommended_mode(found) == STANDALONE


def test_kube_proxys_process_table_and_port_each_make_a_companion(tmp_path: Path) -> None:
    proc = fake_proc(
        tmp_path,
        {77: ("kube-proxy", ["/usr/local/bin/kube-proxy", "--proxy-mode=nftables"])},
        {10256: 77},
    )
    found = signs(tmp_path, proc, "table ip kube-proxy\\ntable ip6 kube-proxy\\n")
    assert "a kube-proxy process is running (pid 77)" in found
    assert "kube-proxy's nftables table is present (table ip kube-proxy)" in found
    assert "kube-proxy's nftables table is present (table ip6 kube-proxy)" in found
    assert "port 10256 (kube-proxy's /healthz) is held by kube-proxy (pid 77)" in found
    assert recommended_mode(found) == COMPANION


def test_another_proxy_on_10256_is_a_dataplane_but_our_own_agent_is_not(tmp_path: Path) -> None:
    other = fake_proc(tmp_path / "a", {5: ("cilium-agent", ["cilium-agent"])}, {10256: 5})
    assert signs(tmp_path / "a", other) == [
        "port 10256 (kube-proxy's /healthz) is held by cilium-agent (pid 5)"
    ]
    ours = fake_proc(
        tmp_path / "b",
        {
            9: (
                "nodeport-lb",
                [
                    "/opt/nodeport-lb/venv/bin/python",
                    "/opt/nodeport-lb/venv/bin/nodeport-lb",
                    "agent",
                    "--mode",
                    "standalone",
                ],
            )
        },
        {10256: 9},
    )
    assert signs(tmp_path / "b", ours) == []


def test_kube_proxys_ipvs_interface_makes_a_companion(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {}, {})
    (tmp_path / "sys-class-net" / "kube-ipvs0").mkdir(parents=True)
    assert signs(tmp_path, proc) == [
        "kube-proxy's IPVS dataplane is present (kube-ipvs0 or IPVS services)"
    ]


def test_kube_proxys_iptables_chains_make_a_companion(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {}, {})
    nat = "*nat\\n:KUBE-SERVICES - [0:0]\\n:KUBE-NODEPORTS - [0:0]\\nCOMMIT\\n"
    assert signs(tmp_path, proc, nat=nat) == [
        "kube-proxy's iptables chains are present (KUBE-SERVICES, KUBE-NODEPORTS)"
    ]


def test_a_node_without_nft_or_iptables_has_none_of_their_rules(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {}, {})
    missing = str(tmp_path / "missing")
    assert dataplane_signs(missing, proc, tmp_path / "none", missing) == []


def test_a_kube_proxy_in_another_network_namespace_is_not_this_nodes(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {7: ("kube-proxy", ["kube-proxy"])}, {})
    (proc / "self" / "ns").mkdir(parents=True)
    os.symlink("net:[4026531840]", proc / "self" / "ns" / "net")
    (proc / "7" / "ns").mkdir()
    os.symlink("net:[4026532999]", proc / "7" / "ns" / "net")
    assert signs(tmp_path, proc) == []
    os.unlink(proc / "7" / "ns" / "net")
    os.symlink("net:[4026531840]", proc / "7" / "ns" / "net")  # the same namespace as ours
    assert signs(tmp_path, proc) == ["a kube-proxy process is running (pid 7)"]
