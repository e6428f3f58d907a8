"""`lab up`, `lab down`, `lab status`, `lab exec` and faults: the lab as a whole."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from nodeport_lb.lab import (
    apt_repo,
    endpoint_controller,
    endpoints,
    hosts,
    layout,
    network,
    pods,
    rootfs,
)
from nodeport_lb.lab.layout import HostPlan
from nodeport_lb.lab.state import STATE_DIR, LabHost, LabState, lab_lock
from nodeport_lb.lab.system import (
    LabError,
    Progress,
    process_alive,
    run,
    stop_process,
    wait_for,
)
from nodeport_lb.store import ManifestStore, atomic_write_text
from nodeport_lb.templating import render_template

# the same path inventories/lab/group_vars/all sets as nodeport_lb_store
STORE_DIR = STATE_DIR / "store"
BOOT_TIMEOUT = 60.0
DOWN_TIMEOUT = 30.0  # containers stopped to their last process
KUBE_PROXY_STAND_IN = "stand-in"  # `lab status --json`: what plays kube-proxy on the nodes
SEED_LABELS = {"app": "python"}
T = TypeVar("T")


def project_root(start: Path | None = None) -> Path:
    """The checkout we run from (it holds ansible.cfg), else the current directory."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / "ansible.cfg").is_file():
            return directory
    return here


def default_inventory() -> Path:
    return project_root() / "inventories" / "lab" / "hosts.yml"


def in_parallel(function: Callable[[T], Any], items: Iterable[T]) -> list[Any]:
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(function, items))


def lab_exists(state: LabState) -> bool:
    """A finished `lab up` whose network is still there (hosts may be stopped by faults)."""
    return state.complete and layout.BRIDGE_NETNS in network.list_netns()


def up(
    nodes: int = 3,
    lbs: int = 2,
    clients: int = 1,
    mirror: str | None = None,
    inventory: Path | None = None,
    seed_pod: bool = True,
    kube_proxy: bool = False,
) -> LabState:
    plan = layout.plan_hosts(nodes, lbs, clients)
    progress = Progress()
    with lab_lock():
        state = LabState.load()
        wanted = [(h.name, h.role) for h in plan]
        same_hosts = [(h.name, h.role) for h in state.hosts] == wanted
        if lab_exists(state) and same_hosts and state.kube_proxy == kube_proxy:
            _resume(state)
            print("the lab is already up (`nodeport-lb lab down` to rebuild it)", file=sys.stderr)
            return state
        if state.hosts or network.lab_netns() or hosts.running_nspawn_pids():
            with progress.step("removing what a previous lab left"):
                _down_locked()
        try:
            state = _build(
                plan, mirror, inventory or default_inventory(), seed_pod, kube_proxy, progress
            )
        except BaseException:
            print("lab up failed: removing what it made (`nodeport-lb lab down`)", file=sys.stderr)
            _down_locked()
            raise
    print(f"==> lab up in {progress.total():.1f}s", file=sys.stderr)
    return state


def _resume(state: LabState) -> None:
    """Boot hosts a fault stopped and the endpoint controller if it died: up means all up."""
    for host in state.hosts:
        if not hosts.is_running(host.nspawn_pid, host.name):
            _start_host_locked(state, host)
    if not endpoint_controller.DAEMON.is_running(state.endpoint_controller_pid):
        state.endpoint_controller_pid = endpoint_controller.start(Path(state.store_path))
        state.save()
    if state.package_repo and not apt_repo.PACKAGE_SERVER.is_running(state.package_server_pid):
        state.package_server_pid = apt_repo.start_server(Path(state.package_repo))
        state.save()


def _build(
    plan: list[HostPlan],
    mirror: str | None,
    inventory: Path,
    seed_pod: bool,
    kube_proxy: bool,
    progress: Progress,
) -> LabState:
    network.check_no_overlap()
    with progress.step("base root filesystem (Debian bookworm)"):
        base, built = rootfs.ensure_base(mirror)
        how = "built with debootstrap" if built else "cached"
        print(f"    {base} ({how})", file=sys.stderr)
    with progress.step("package repository for the hosts (what the roles and the lab install)"):
        repo, built = apt_repo.ensure_repo(base)
        how = "downloaded with this machine's apt, indexed" if built else "cached"
        print(f"    {repo} ({how})", file=sys.stderr)
    state = LabState(
        hosts=[LabHost(h.name, h.role, h.address, h.netns, h.pod_cidr) for h in plan],
        vips=layout.vips(),
        store_path=str(STORE_DIR),
        inventory_path=str(inventory),
        base_rootfs=str(base),
        package_repo=str(repo),
        kube_proxy=kube_proxy,
    )
    state.save()  # from here on `lab down` knows what to look for
    node_plans = [h for h in plan if h.role == "node"]
    with progress.step(f"network: bridge, {len(plan)} host namespaces, controller veth"):
        network.create_bridge()
        for host in plan:
            network.wire_host(host, node_plans)
        network.wire_controller(node_plans)
    with progress.step(f"package server on {layout.PACKAGE_REPO_URL} (the hosts' apt source)"):
        state.package_server_pid = apt_repo.start_server(repo)
        state.save()
    with progress.step("host filesystems (overlayfs) and keys"):
        STORE_DIR.mkdir(parents=True, exist_ok=True)
        hosts.ensure_lab_ssh_key()
        for host in plan:
            hosts.mount_overlay(host.name, base)
        known = in_parallel(lambda h: hosts.personalise(h, plan), plan)
        atomic_write_text(hosts.KNOWN_HOSTS, "\n".join(known) + "\n")
    if kube_proxy:
        with progress.step("kube-proxy STAND-IN on every node (kube-proxy.service)"):
            for host in node_plans:
                hosts.install_kube_proxy(host)
    with progress.step(f"booting {len(plan)} hosts (systemd-nspawn) and waiting for sshd"):
        for host, record in zip(plan, state.hosts, strict=True):
            record.nspawn_pid = hosts.start(host, STORE_DIR)
            state.save()
        in_parallel(lambda h: hosts.wait_for_ssh(h, BOOT_TIMEOUT), plan)
        in_parallel(_check_ssh_login, plan)
    with progress.step("apt on every host reads the lab's repository; clients get curl and nc"):
        records = {h.name: h for h in state.hosts}
        in_parallel(lambda h: hosts.prepare_apt(h, records[h.name].nspawn_pid), plan)
    if kube_proxy:
        with progress.step("waiting for kube-proxy's /healthz on every node"):
            records = {h.name: h for h in state.hosts}
            in_parallel(
                lambda h: hosts.start_kube_proxy(h, records[h.name].nspawn_pid, BOOT_TIMEOUT),
                node_plans,
            )
    with progress.step(f"inventory {inventory}"):
        write_inventory(state, inventory)
    with progress.step("endpoint controller (EndpointSlices follow Services and pods)"):
        state.endpoint_controller_pid = endpoint_controller.start(STORE_DIR)
        state.save()
    if seed_pod:
        node = "node2" if any(h.name == "node2" for h in plan) else plan[0].name
        with progress.step(f"seed workload: echo pod app=python on {node}"):
            pod = pods.add_pod(state, node, dict(SEED_LABELS))
            state.pods.append(pod)
            state.save()
            pods.sync_endpoints(state)
    state.complete = True
    state.save()
    return state


def _check_ssh_login(host: HostPlan) -> None:
    result = run([*hosts.ssh_args(host.address), "true"], check=False)
    if result.returncode != 0:
        raise LabError(f"{host.name}: ssh login failed: {result.stderr.strip()}")


def write_inventory(state: LabState, path: Path) -> None:
    ssh_common_args = (
        f"-o UserKnownHostsFile={hosts.KNOWN_HOSTS} -o StrictHostKeyChecking=yes "
        "-o IdentitiesOnly=yes"
    )
    text = render_template(
        "lab-inventory.yml.j2",
        hosts=state.hosts,
        store_path=state.store_path,
        node_store_path=layout.NODE_STORE_PATH,
        vips=state.vips,
        vip_pool=str(layout.VIP_NET),
        host_subnet=str(layout.HOST_NET),
        controller_address=layout.CONTROLLER_ADDRESS,
        ssh_key=str(hosts.SSH_KEY),
        ssh_common_args=ssh_common_args,
    )
    atomic_write_text(path, text)


def down() -> list[str]:
    with lab_lock():
        return _down_locked()


def _down_locked() -> list[str]:
    """Remove everything the lab made, from the state file and by scanning for leftovers."""
    removed: list[str] = []
    state = LabState.load()
    for daemon, pid in (
        (endpoint_controller.DAEMON, state.endpoint_controller_pid),
        (apt_repo.PACKAGE_SERVER, state.package_server_pid),
    ):
        removed += [f"{daemon.name} {stopped}" for stopped in daemon.stop_all(pid)]
    # pods first: their processes run on this machine
    for pod in state.pods:
        pods.kill_pod_process(pod)
    for pid in pods.leftover_echo_pids():
        marker = next(m for m in pods.POD_PROCESS_MARKERS if process_alive(pid, m))
        stop_process(pid, marker, timeout=5.0)
        removed.append(f"pod process {pid}")
    # hosts: from the state file, and any nspawn of ours the state does not know about
    running = hosts.running_nspawn_pids()
    for host in state.hosts:
        if host.nspawn_pid and hosts.is_running(host.nspawn_pid, host.name):
            running[host.name] = host.nspawn_pid

    # what identifies each container's processes, read before they go: its PID namespace
    # and the host's network namespace
    namespaces = {
        inode
        for name, pid in running.items()
        if (inode := hosts.namespace_inode(hosts.leader_pid(pid, name), "pid"))
    }
    namespaces |= {(network.NETNS_DIR / netns).stat().st_ino for netns in network.lab_netns()}

    def stop_host(item: tuple[str, int]) -> None:
        hosts.stop(item[1], item[0])

    in_parallel(stop_host, running.items())
    _wait_for_containers_gone(namespaces)
    removed += [f"container {name}" for name in running]
    for mount in _lab_mounts():
        run(["umount", mount], check=False)
        if mount in _lab_mounts():
            run(["umount", "--lazy", mount], check=False)
        removed.append(f"mount {mount}")
    for netns in network.lab_netns():
        network.delete_netns(netns)
        removed.append(f"netns {netns}")
    if network.controller_link_exists():
        network.unwire_controller()
        removed.append(f"link {layout.CONTROLLER_LINK}")
    if state.inventory_path:
        with contextlib.suppress(FileNotFoundError):
            Path(state.inventory_path).unlink()
            removed.append(f"inventory {state.inventory_path}")
    for name in running:
        # nspawn leaves an empty propagation directory per machine
        with contextlib.suppress(OSError):
            os.rmdir(f"/run/systemd/nspawn/propagate/{hosts.machine_name(name)}")
    if STATE_DIR.exists() and not _lab_mounts():
        shutil.rmtree(STATE_DIR, ignore_errors=True)
    return removed


def _wait_for_containers_gone(namespaces: set[int], timeout: float = DOWN_TIMEOUT) -> None:
    """Return once no nspawn of the lab runs and nothing is left in the containers' PID and
    network namespaces; a clear error, naming what still runs, after ``timeout``."""

    def left() -> dict[int, str]:
        nspawns = hosts.nspawn_processes()
        named = {pid: f"systemd-nspawn of {name}" for pid, name in nspawns.items()}
        return named | hosts.processes_in_namespaces(namespaces)

    if wait_for(lambda: not left(), timeout, interval=0.1):
        return
    still = ", ".join(f"{pid} ({what})" for pid, what in sorted(left().items()))
    raise LabError(
        f"lab down: the lab's containers still have processes {timeout:.0f}s after they were "
        f"stopped: {still}. Run `nodeport-lb lab down` again; if they stay, they are stuck in "
        "the kernel (see /proc/PID/stack)"
    )


def _lab_mounts() -> list[str]:
    """Mount points under the lab's state directory, deepest first."""
    mounts = []
    with open("/proc/self/mounts") as table:
        for line in table:
            mount_point = line.split()[1].encode().decode("unicode_escape")
            if mount_point.startswith(f"{STATE_DIR}/"):
                mounts.append(mount_point)
    return sorted(mounts, key=len, reverse=True)


def status(state: LabState | None = None) -> dict[str, Any]:
    """The shape of `lab status --json`, which scripts and tests read: keep it compatible."""
    state = state or LabState.load()
    services = ManifestStore(state.store_path).load().of_kind("Service") if state.store_path else []
    return {
        "hosts": [{"name": h.name, "role": h.role, "address": h.address} for h in state.hosts],
        # "stand-in": every node runs the lab's kube-proxy stand-in (`lab up --kube-proxy`)
        "kube_proxy": KUBE_PROXY_STAND_IN if state.kube_proxy else None,
        "vips": list(state.vips),
        "pods": [
            {
                "name": pod.name,
                "node": pod.node,
                "service": ",".join(endpoints.services_of_pod(services, pod)) or None,
                "address": pod.address,
            }
            for pod in state.pods
        ],
    }


def status_table(state: LabState | None = None) -> str:
    state = state or LabState.load()
    if not state.hosts:
        return "the lab is not up (`nodeport-lb lab up`)"
    data = status(state)
    header = f"{'HOST':<10} {'ROLE':<7} {'ADDRESS':<15} {'STATE':<8} {'POD CIDR':<17}"
    lines = [header + (" KUBE-PROXY" if state.kube_proxy else "")]
    for host in state.hosts:
        up = hosts.is_running(host.nspawn_pid, host.name)
        line = (
            f"{host.name:<10} {host.role:<7} {host.address:<15} "
            f"{'running' if up else 'stopped':<8} {host.pod_cidr or '':<17}"
        )
        if state.kube_proxy and host.role == "node":
            line += f" stand-in ({_unit_state(host, hosts.KUBE_PROXY_UNIT) if up else '-'})"
        lines.append(line.rstrip())
    if state.kube_proxy:
        lines += [
            "",
            "kube-proxy: a STAND-IN on every node, not the real kube-proxy (which cannot be "
            "installed here):",
            "  kube-proxy.service (nodeport_lb/lab/kube_proxy.py): table ip kube-proxy with "
            "the NodePort rules, healthCheckNodePorts, /healthz on kube-proxy's port",
        ]
    lines += ["", f"VIPs: {' '.join(data['vips'])}", ""]
    lines.append(f"{'POD':<20} {'NODE':<8} {'ADDRESS':<15} {'PHASE':<12} SERVICE")
    for pod, row in zip(state.pods, data["pods"], strict=True):
        alive = pod.phase if process_alive(pod.pid, pods.pod_marker(pod)) else "failed"
        lines.append(
            f"{pod.name:<20} {pod.node:<8} {pod.address:<15} {alive:<12} {row['service'] or '-'}"
        )
    lines += ["", f"store: {state.store_path}   inventory: {state.inventory_path}"]
    if state.package_repo:
        serving = apt_repo.PACKAGE_SERVER.is_running(state.package_server_pid)
        lines.append(
            f"packages: {layout.PACKAGE_REPO_URL} ({'serving' if serving else 'NOT serving'} "
            f"{state.package_repo})"
        )
    return "\n".join(lines)


def _unit_state(host: LabHost, unit: str) -> str:
    command = hosts.exec_args(host.nspawn_pid, host.name, ["systemctl", "is-active", unit])
    result = run(command, check=False)
    return result.stdout.strip() or "unknown"


def exec_on_host(name: str, command: list[str]) -> int:
    state = LabState.load()
    host = state.host(name)
    if not command:
        raise LabError("nothing to run: lab exec HOST -- COMMAND [ARG...]")
    return subprocess.call(hosts.exec_args(host.nspawn_pid, host.name, command))


def stop_host(name: str, role: str, crash: bool = False) -> None:
    """A host powers off: its container stops and its link to the bridge goes down.

    ``crash``: the cable is pulled first and the host killed, without a shutdown.
    """
    with lab_lock():
        state = LabState.load()
        host = _host_of_role(state, name, role)
        if crash:
            network.set_bridge_port(host.name, up=False)
        hosts.stop(host.nspawn_pid, host.name, crash=crash)
        network.set_bridge_port(host.name, up=False)
        host.nspawn_pid = None
        state.save()


def start_host(name: str, role: str) -> None:
    with lab_lock():
        state = LabState.load()
        host = _host_of_role(state, name, role)
        if not hosts.is_running(host.nspawn_pid, host.name):
            _start_host_locked(state, host)


def _start_host_locked(state: LabState, host: LabHost) -> None:
    network.set_bridge_port(host.name, up=True)
    host.nspawn_pid = hosts.start(pods.host_plan(host), Path(state.store_path))
    state.save()
    hosts.wait_for_ssh(pods.host_plan(host), BOOT_TIMEOUT)


def _host_of_role(state: LabState, name: str, role: str) -> LabHost:
    host = state.host(name)
    if host.role != role:
        raise LabError(f"{name} is a {host.role}, not a {role}")
    return host
