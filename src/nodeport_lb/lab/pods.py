"""Lab pods: a network namespace per pod, attached to its node, running an application.

The pod's netns is made here on the controller and joined to the node's netns by a veth (node
routes a /32 to it), exactly what a ptp CNI plugin does, so the pod is reachable from inside the
node container and, through node routes, from every lab host. The application is one of:

- ``echo`` (default): our echo backend, which reports the TCP peer and any PROXY header;
- ``http-server``: ``python3 -m http.server PORT``, an ordinary application that knows nothing
  of PROXY protocol and logs each request's TCP peer (``lab pod logs NAME``).

The process is ours: started in the pod's netns, tracked by PID, ended by PID.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from nodeport_lb.lab import endpoints, layout, network
from nodeport_lb.lab.echo import DEFAULT_ECHO_PORT, DEFAULT_HTTP_PORT
from nodeport_lb.lab.layout import HostPlan
from nodeport_lb.lab.state import STATE_DIR, LabHost, LabPod, LabState, PodPort, lab_lock
from nodeport_lb.lab.system import LabError, process_alive, stop_process, wait_for
from nodeport_lb.store import ManifestStore

PODS_DIR = STATE_DIR / "pods"
POD_NETNS_PREFIX = f"{layout.PREFIX}pod-"
ECHO_MODULE = "nodeport_lb.lab.echo"
HTTP_SERVER_MODULE = "http.server"
APPS = ("echo", "http-server")
POD_PROCESS_MARKERS = (ECHO_MODULE, f"-m {HTTP_SERVER_MODULE} ")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
READY_TIMEOUT = 10.0


def echo_marker(pod_name: str) -> str:
    """What identifies a pod's echo process in /proc/PID/cmdline."""
    return f"{ECHO_MODULE} --name {pod_name} "


def http_server_marker(pod: LabPod) -> str:
    """What identifies a pod's http.server in /proc/PID/cmdline (its bind address is the
    pod's own, so no two pods share it)."""
    return f"-m {HTTP_SERVER_MODULE} {_http_port(pod)} --bind {pod.address} "


def pod_marker(pod: LabPod) -> str:
    return http_server_marker(pod) if pod.app == "http-server" else echo_marker(pod.name)


def _http_port(pod: LabPod) -> int:
    return next(port.port for port in pod.ports if port.name == "http")


def log_path(pod_name: str) -> Path:
    """The pod's output: the echo's messages, or the plain application's access log."""
    return PODS_DIR / f"{pod_name}.log"


def parse_labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LabError(f"labels must look like key=value[,key=value]: {text!r}")
        labels[key] = value
    return labels


def new_pod_name(labels: dict[str, str], taken: set[str]) -> str:
    base = labels.get("app", "pod")
    while True:
        name = f"{base}-{''.join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))}"
        if name not in taken:
            return name


def host_plan(host: LabHost) -> HostPlan:
    return HostPlan(host.name, host.role, host.address, host.pod_cidr)


def sync_endpoints(state: LabState) -> list[str]:
    return endpoints.sync_endpoint_slices(ManifestStore(state.store_path), state.pods)


def add_pod(
    state: LabState,
    node_name: str,
    labels: dict[str, str],
    name: str | None = None,
    port: int = DEFAULT_HTTP_PORT,
    echo_port: int = DEFAULT_ECHO_PORT,
    app: str = "echo",
) -> LabPod:
    """Create one pod on a node and start its application; the caller saves state and syncs
    slices."""
    if app not in APPS:
        raise LabError(f"--app {app!r}: choose one of {', '.join(APPS)}")
    node = state.host(node_name)
    if node.role != "node" or not node.pod_cidr:
        raise LabError(f"{node_name} is not a node (pods run on nodes only)")
    taken = {pod.name for pod in state.pods}
    name = name or new_pod_name(labels, taken)
    if not _NAME_RE.match(name):
        raise LabError(f"pod name {name!r} must be a DNS label (a-z, 0-9, '-'), 40 chars max")
    if name in taken:
        raise LabError(f"a pod named {name!r} exists already")
    used = {pod.address for pod in state.pods if pod.node == node_name}
    pod = LabPod(
        name=name,
        node=node_name,
        address=layout.pod_address(node.pod_cidr, used),
        labels=labels,
        ports=[PodPort("http", port, "TCP")]
        + (
            [PodPort("echo-tcp", echo_port, "TCP"), PodPort("echo-udp", echo_port, "UDP")]
            if app == "echo"
            else []
        ),
        netns=f"{POD_NETNS_PREFIX}{name}",
        uid=str(uuid.uuid4()),
        app=app,
    )
    try:
        network.add_pod_link(
            pod.netns, host_plan(node), pod.address, layout.pod_link_name(pod.name)
        )
        if app == "http-server":
            pod.pid = _start_http_server(pod, port)
        else:
            pod.pid = _start_echo(pod, port, echo_port)
    except BaseException:
        remove_pod_resources(pod)
        raise
    return pod


def _start_echo(pod: LabPod, port: int, echo_port: int) -> int:
    PODS_DIR.mkdir(parents=True, exist_ok=True)
    ready = PODS_DIR / f"{pod.name}.ready"
    ready.unlink(missing_ok=True)
    command = [
        "ip",
        "netns",
        "exec",
        pod.netns,  # exec()s, so the PID is the echo's own
        sys.executable,
        "-m",
        ECHO_MODULE,
        "--name",
        pod.name,
        "--node",
        pod.node,
        "--port",
        str(port),
        "--echo-port",
        str(echo_port),
        "--ready-file",
        str(ready),
    ]
    return _start(pod, command, "echo", lambda: ready.exists())


def _start_http_server(pod: LabPod, port: int) -> int:
    """The plainest application there is: ``python3 -m http.server PORT`` (the system's Python,
    no project code), serving a page that names the pod, its access log on stderr."""
    python3 = shutil.which("python3") or sys.executable
    site = PODS_DIR / f"{pod.name}.www"
    site.mkdir(parents=True, exist_ok=True)
    (site / "index.html").write_text(f"pod {pod.name} on {pod.node}\n")
    command = [
        "ip",
        "netns",
        "exec",
        pod.netns,
        python3,
        "-u",  # every access-log line reaches the log file at once
        "-m",
        HTTP_SERVER_MODULE,
        str(port),
        "--bind",
        pod.address,
        "--directory",
        str(site),
    ]
    return _start(pod, command, "http.server", lambda: _listening(pod.netns, port))


def _listening(netns: str, port: int) -> bool:
    # ss instead of a test connection, which would be a line in the access log
    result = subprocess.run(
        ["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(result.stdout.strip())


def _start(pod: LabPod, command: list[str], what: str, ready: Callable[[], bool]) -> int:
    PODS_DIR.mkdir(parents=True, exist_ok=True)
    with open(log_path(pod.name), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # keeps running after this command; ended by PID
        )
    if not wait_for(lambda: process.poll() is not None or ready(), READY_TIMEOUT):
        process.kill()
        raise LabError(f"pod {pod.name}: {what} did not listen within {READY_TIMEOUT:.0f}s")
    if process.poll() is not None:
        log_text = log_path(pod.name).read_text(errors="replace")[-2000:]
        raise LabError(f"pod {pod.name}: {what} exited ({process.returncode}):\n{log_text}")
    return process.pid


def read_log(name: str) -> str:
    """A pod's output so far (``lab pod logs``)."""
    with lab_lock():
        state = LabState.load()
        pod = state.pod(name)
    try:
        return log_path(pod.name).read_text(errors="replace")
    except FileNotFoundError:
        return ""


def kill_pod_process(pod: LabPod) -> None:
    stop_process(pod.pid, pod_marker(pod), timeout=5.0)


def remove_pod_resources(pod: LabPod) -> None:
    """End the echo and delete the netns (its veth, the node's peer and /32 route go with it)."""
    kill_pod_process(pod)
    network.delete_netns(pod.netns)
    for suffix in (".ready", ".log"):
        (PODS_DIR / f"{pod.name}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(PODS_DIR / f"{pod.name}.www", ignore_errors=True)


def add_pods(
    node_name: str,
    labels: dict[str, str],
    count: int,
    name: str | None,
    port: int,
    echo_port: int,
    app: str = "echo",
) -> list[LabPod]:
    if name and count != 1:
        raise LabError("--name names one pod; leave it out with --count")
    with lab_lock():
        state = LabState.load()
        require_up(state)
        added = []
        for _ in range(count):
            pod = add_pod(state, node_name, labels, name, port, echo_port, app)
            state.pods.append(pod)
            state.save()
            added.append(pod)
        sync_endpoints(state)
    return added


def remove_pod(name: str, grace: float) -> None:
    """Like deleting a pod: terminating (still serving) for ``grace`` seconds, then gone."""
    with lab_lock():
        state = LabState.load()
        pod = state.pod(name)
        if pod.phase == "running" and grace > 0:
            pod.phase = "terminating"
            state.save()
            sync_endpoints(state)
    if grace > 0:
        print(f"pod {name}: terminating, removed in {grace:g}s", file=sys.stderr, flush=True)
        time.sleep(grace)  # without the lock: other commands may run meanwhile
    with lab_lock():
        state = LabState.load()
        pod = state.pod(name)
        remove_pod_resources(pod)
        state.pods = [p for p in state.pods if p.name != name]
        state.save()
        sync_endpoints(state)


def kill_pod(name: str) -> None:
    """A crashed pod: its process dies, the endpoint turns not ready and not serving."""
    with lab_lock():
        state = LabState.load()
        pod = state.pod(name)
        stop_process(pod.pid, pod_marker(pod), sig=9)
        pod.phase = "failed"
        state.save()
        sync_endpoints(state)


def require_up(state: LabState) -> None:
    if not state.hosts or not state.store_path:
        raise LabError("the lab is not up: run `nodeport-lb lab up` first")


def leftover_echo_pids() -> list[int]:
    """Pod processes (echo or http.server) running in one of the lab's pod namespaces (for
    `lab down`)."""
    pod_netns_inodes = set()
    for netns in network.lab_netns():
        if netns.startswith(POD_NETNS_PREFIX):
            pod_netns_inodes.add((network.NETNS_DIR / netns).stat().st_ino)
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "ns" / "net").stat().st_ino in pod_netns_inodes and any(
                process_alive(int(proc.name), marker) for marker in POD_PROCESS_MARKERS
            ):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids
