"""Lab hosts: an overlayfs layer over the base rootfs, booted by systemd-nspawn in its netns.

This machine's PID 1 may not be systemd, hence --keep-unit --register=no (no machined, no
scope unit). CAP_NET_ADMIN/CAP_NET_RAW plus SYSTEMD_NSPAWN_API_VFS_WRITABLE=network let a host
program nftables, run keepalived (VRRP raw sockets, VIPs) and set its net.* sysctls — and no more.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from pathlib import Path

from nodeport_lb.defaults import (
    DEFAULT_HEALTHZ_ADDRESS,
    DEFAULT_METRICS_ADDRESS,
    PROXY_HEALTHZ_PATH,
    PROXY_HEALTHZ_PORT,
    address_text,
)
from nodeport_lb.lab import apt_repo, layout
from nodeport_lb.lab.layout import HostPlan
from nodeport_lb.lab.state import STATE_DIR
from nodeport_lb.lab.system import LabError, child_pids, process_alive, run, wait_for
from nodeport_lb.templating import render_template

HOSTS_DIR = STATE_DIR / "hosts"
SSH_DIR = STATE_DIR / "ssh"
SSH_KEY = SSH_DIR / "id_ed25519"
KNOWN_HOSTS = SSH_DIR / "known_hosts"
CAPABILITIES = "CAP_NET_ADMIN,CAP_NET_RAW"
EXEC_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def host_dir(name: str) -> Path:
    return HOSTS_DIR / name


def root_dir(name: str) -> Path:
    return host_dir(name) / "root"


def machine_name(name: str) -> str:
    return f"{layout.PREFIX}{name}"


def nspawn_marker(name: str) -> str:
    """What identifies our nspawn process for a host in /proc/PID/cmdline."""
    return f"--machine={machine_name(name)}"


def ensure_lab_ssh_key() -> None:
    SSH_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not SSH_KEY.exists():
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "nodeport-lb-lab",
                "-f",
                str(SSH_KEY),
            ]
        )


def mount_overlay(name: str, base: Path) -> Path:
    directory = host_dir(name)
    for sub in ("upper", "work", "root"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    root = root_dir(name)
    if not os.path.ismount(root):
        options = f"lowerdir={base},upperdir={directory / 'upper'},workdir={directory / 'work'}"
        run(["mount", "-t", "overlay", "overlay", "-o", options, str(root)])
    return root


def personalise(host: HostPlan, hosts: list[HostPlan]) -> str:
    """Give a host its identity (name, machine-id, keys); return its known_hosts line."""
    root = root_dir(host.name)
    (root / "etc" / "hostname").write_text(f"{host.name}\n")
    (root / "etc" / "machine-id").write_text(uuid.uuid4().hex + "\n")
    (root / "etc" / "hosts").write_text(
        render_template(
            "lab-etc-hosts.j2", host=host, hosts=hosts, controller_address=layout.CONTROLLER_ADDRESS
        )
    )
    (root / "etc" / "ssh" / "sshd_config.d" / "nodeport-lb-lab.conf").write_text(
        render_template("lab-sshd.conf.j2")
    )
    # the host key is made here, so known_hosts is exact from the start (no trust on first use)
    host_key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    for old in (host_key, host_key.with_suffix(".pub")):
        old.unlink(missing_ok=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(host_key)])
    ssh_dir = root / "root" / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(SSH_KEY.with_suffix(".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)
    if host.role == "node":
        (root / layout.NODE_STORE_PATH.lstrip("/")).mkdir(parents=True, exist_ok=True)
    key_type, key, *_ = host_key.with_suffix(".pub").read_text().split()
    return f"{host.address},{host.name} {key_type} {key}"


KUBE_PROXY_UNIT = "kube-proxy.service"
KUBE_PROXY_STAND_IN = Path(__file__).with_name("kube_proxy.py")
# What the stand-in runs on (a real kube-proxy brings nft in its image): installed on a node
# that lacks them, from the node's package source (the lab's repository), before it starts.
_KUBE_PROXY_READY = (
    "command -v nft >/dev/null && python3 -c 'import yaml' 2>/dev/null || "
    "{ DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
    + " ".join(apt_repo.KUBE_PROXY_PACKAGES)
    + " && "
    f"systemctl reset-failed {KUBE_PROXY_UNIT}; systemctl restart {KUBE_PROXY_UNIT}; }}"
)
_APT_ENV = ["env", "DEBIAN_FRONTEND=noninteractive"]


def prepare_apt(host: HostPlan, nspawn_pid: int | None) -> None:
    """What a fresh server has done before anyone logs in: apt has read its package source
    (here the lab's repository). Clients also get the tools the tests and verify drive from
    them (curl, nc)."""
    run(exec_args(nspawn_pid, host.name, [*_APT_ENV, "apt-get", "-qq", "update"]))
    if host.role == "client":
        install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
        run(exec_args(nspawn_pid, host.name, [*_APT_ENV, *install, *apt_repo.CLIENT_PACKAGES]))


def kube_proxy_unit(node_name: str) -> str:
    """kube-proxy.service for a node: the stand-in on kube-proxy's default addresses."""
    return render_template(
        "lab-kube-proxy.service.j2",
        node_name=node_name,
        manifests=layout.NODE_STORE_PATH,
        healthz_address=address_text(DEFAULT_HEALTHZ_ADDRESS),
        metrics_address=address_text(DEFAULT_METRICS_ADDRESS),
    )


def install_kube_proxy(host: HostPlan) -> None:
    """Put the kube-proxy stand-in on a node before it boots, enabled as a cluster installer
    would leave it: the program as /usr/local/bin/kube-proxy, its unit, the wants link."""
    root = root_dir(host.name)
    program = root / "usr" / "local" / "bin" / "kube-proxy"
    program.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(KUBE_PROXY_STAND_IN, program)
    program.chmod(0o755)
    systemd = root / "etc" / "systemd" / "system"
    (systemd / KUBE_PROXY_UNIT).write_text(kube_proxy_unit(host.name))
    wants = systemd / "multi-user.target.wants" / KUBE_PROXY_UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{KUBE_PROXY_UNIT}")


def start_kube_proxy(host: HostPlan, nspawn_pid: int | None, timeout: float) -> None:
    """A node is ready when its kube-proxy answers /healthz (what a cluster's node readiness
    looks at), after its packages are there."""
    run(exec_args(nspawn_pid, host.name, ["sh", "-c", _KUBE_PROXY_READY]))
    request = (
        f"GET {PROXY_HEALTHZ_PATH} HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n"
    ).encode()

    def healthy() -> bool:
        try:
            with socket.create_connection((host.address, PROXY_HEALTHZ_PORT), timeout=1) as conn:
                conn.sendall(request)
                return conn.recv(64).startswith(b"HTTP/1.1 200 ")
        except OSError:
            return False

    if not wait_for(healthy, timeout, interval=0.2):
        raise LabError(
            f"{host.name}: the kube-proxy stand-in did not answer {PROXY_HEALTHZ_PATH} on "
            f":{PROXY_HEALTHZ_PORT} within {timeout:.0f}s "
            f"(`nodeport-lb lab exec {host.name} -- journalctl -u kube-proxy`)"
        )


def start(host: HostPlan, store_path: Path) -> int:
    """Boot a host in the background; return the nspawn PID."""
    directory = host_dir(host.name)
    args = [
        "systemd-nspawn",
        "--boot",
        "--keep-unit",
        "--register=no",
        nspawn_marker(host.name),
        f"--hostname={host.name}",
        f"--directory={root_dir(host.name)}",
        f"--capability={CAPABILITIES}",
        f"--network-namespace-path=/run/netns/{host.netns}",
        "--resolv-conf=off",
        "--timezone=off",
        "--link-journal=no",
        "--console=read-only",
    ]
    if host.role == "node":
        args.append(f"--bind-ro={store_path}:{layout.NODE_STORE_PATH}")
    env = {**os.environ, "SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}
    with open(directory / "console.log", "ab") as console:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives this command; ended by `lab down` by PID
        )
    return process.pid


def leader_pid(nspawn_pid: int | None, name: str) -> int | None:
    """The container's PID 1 as seen from here (nspawn's child)."""
    if not process_alive(nspawn_pid, nspawn_marker(name)):
        return None
    assert nspawn_pid is not None
    children = child_pids(nspawn_pid)
    return children[0] if children else None


def is_running(nspawn_pid: int | None, name: str) -> bool:
    return process_alive(nspawn_pid, nspawn_marker(name))


def wait_for_ssh(host: HostPlan, timeout: float) -> None:
    def sshd_answers() -> bool:
        try:
            with socket.create_connection((host.address, 22), timeout=1) as conn:
                return conn.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    if not wait_for(sshd_answers, timeout, interval=0.2):
        log = host_dir(host.name) / "console.log"
        raise LabError(f"{host.name}: sshd did not answer within {timeout:.0f}s (see {log})")


def ssh_args(address: str) -> list[str]:
    return [
        "ssh",
        "-i",
        str(SSH_KEY),
        "-o",
        f"UserKnownHostsFile={KNOWN_HOSTS}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        f"root@{address}",
    ]


def exec_args(nspawn_pid: int | None, name: str, command: list[str]) -> list[str]:
    """nsenter into a running host: its mount, UTS, IPC, net, PID and cgroup namespaces."""
    leader = leader_pid(nspawn_pid, name)
    if leader is None:
        raise LabError(f"{name} is not running (start it with `nodeport-lb lab fault start-node`?)")
    return [
        "nsenter",
        f"--target={leader}",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--pid",
        "--root",
        "env",
        "--chdir=/root",  # inside the host's root: nsenter's own --wd would point outside it
        "-i",
        f"PATH={EXEC_PATH}",
        "HOME=/root",
        "LANG=C.UTF-8",
        f"TERM={os.environ.get('TERM', 'dumb')}",
        *command,
    ]


def stop(nspawn_pid: int | None, name: str, timeout: float = 15.0, crash: bool = False) -> None:
    """Shut a host down in order (nspawn turns SIGTERM into a poweroff), then force if needed.

    ``crash``: no shutdown at all (its PID 1 is killed at once), like a power cut: services
    get no chance to say goodbye (keepalived sends no priority-0 advert, for one).

    Returns once nspawn has exited and nothing runs in the container's PID namespace any more:
    the kernel ends those processes after nspawn is gone, and a host booted again at once (or
    a new lab) must not meet the old ones.
    """
    marker = nspawn_marker(name)
    if not process_alive(nspawn_pid, marker):
        return
    assert nspawn_pid is not None
    leader = leader_pid(nspawn_pid, name)
    pid_namespace = namespace_inode(leader, "pid") if leader else None
    if not crash:
        os.kill(nspawn_pid, signal.SIGTERM)
        wait_for(lambda: not process_alive(nspawn_pid, marker), timeout, interval=0.1)
    if process_alive(nspawn_pid, marker):
        # killing the container's PID 1 ends its whole PID namespace; nspawn then exits
        if leader and process_alive(leader):
            os.kill(leader, signal.SIGKILL)
        if not wait_for(lambda: not process_alive(nspawn_pid, marker), 5.0):
            os.kill(nspawn_pid, signal.SIGKILL)
            wait_for(lambda: not process_alive(nspawn_pid, marker), 5.0)
    if pid_namespace:
        wait_for(lambda: not processes_in_namespaces({pid_namespace}), 5.0, interval=0.05)


def namespace_inode(pid: int | None, kind: str) -> int | None:
    """The inode of a process's namespace (``pid``, ``net``): what identifies it."""
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino if pid else None
    except OSError:
        return None


def processes_in_namespaces(inodes: set[int]) -> dict[int, str]:
    """Live processes (PID -> command name) in any of these PID or network namespaces."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not any((proc / "ns" / kind).stat().st_ino in inodes for kind in ("pid", "net")):
                continue
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        command, _, rest = stat.partition("(")[2].rpartition(")")
        if rest.split()[:1] != ["Z"]:
            found[int(proc.name)] = command
    return found


def running_nspawn_pids() -> dict[str, int]:
    """The lab's nspawn process per host (the first of them: nspawn forks helpers that carry
    the same command line), for leftover scans."""
    found: dict[str, int] = {}
    for pid, name in sorted(nspawn_processes().items()):
        found.setdefault(name, pid)
    return found


def nspawn_processes() -> dict[int, str]:
    """Every nspawn process of the lab (by its --machine=nplb-… marker): PID -> host name."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or not argv[0].endswith(b"systemd-nspawn"):
            continue
        if not process_alive(int(proc.name)):
            continue
        for arg in argv:
            if arg.startswith(f"--machine={layout.PREFIX}".encode()):
                found[int(proc.name)] = arg.decode().split("=", 1)[1][len(layout.PREFIX) :]
    return found
