"""What the lab made, on disk, so `lab down` (and every other command) can find it again.

The state file is written after every step of `lab up`, so a crashed or half-finished run still
tells `lab down` what to remove. A lock serialises commands that change the lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nodeport_lb.store import atomic_write_text

STATE_DIR = Path("/var/lib/nodeport-lb/lab")
STATE_FILE = STATE_DIR / "state.json"
LOCK_FILE = Path("/run/nodeport-lb/lab.lock")


@dataclass(frozen=True)
class PodPort:
    name: str
    port: int
    protocol: str


@dataclass
class LabPod:
    name: str
    node: str
    address: str
    labels: dict[str, str]
    ports: list[PodPort]
    netns: str
    namespace: str = "default"
    uid: str = ""
    pid: int | None = None
    # running (ready) | terminating (draining: serving, not ready) | failed (killed)
    phase: str = "running"
    # echo (ours: reports the peer and any PROXY header) | http-server (python3 -m http.server)
    app: str = "echo"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabPod:
        data = dict(data)
        data["ports"] = [PodPort(**port) for port in data.get("ports", [])]
        return cls(**data)


@dataclass
class LabHost:
    name: str
    role: str  # node | lb | client
    address: str
    netns: str
    pod_cidr: str | None = None  # nodes only
    nspawn_pid: int | None = None


@dataclass
class LabState:
    """Everything `lab up` created; saved after each step."""

    hosts: list[LabHost] = field(default_factory=list)
    pods: list[LabPod] = field(default_factory=list)
    vips: list[str] = field(default_factory=list)
    store_path: str = ""
    inventory_path: str = ""
    base_rootfs: str = ""
    endpoint_controller_pid: int | None = None
    package_repo: str = ""  # the Debian packages the hosts install from (apt_repo.py)
    package_server_pid: int | None = None
    kube_proxy: bool = False  # `lab up --kube-proxy`: every node runs the kube-proxy stand-in
    complete: bool = False  # True once `lab up` finished

    def host(self, name: str) -> LabHost:
        return _named(self.hosts, name, "host", "none (is the lab up?)")

    def pod(self, name: str) -> LabPod:
        return _named(self.pods, name, "pod", "none")

    def save(self, path: Path = STATE_FILE) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n", mode=0o600)

    @classmethod
    def load(cls, path: Path = STATE_FILE) -> LabState:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        return cls(
            hosts=[LabHost(**host) for host in data.get("hosts", [])],
            pods=[LabPod.from_dict(pod) for pod in data.get("pods", [])],
            vips=list(data.get("vips", [])),
            store_path=data.get("store_path", ""),
            inventory_path=data.get("inventory_path", ""),
            base_rootfs=data.get("base_rootfs", ""),
            endpoint_controller_pid=data.get("endpoint_controller_pid"),
            package_repo=data.get("package_repo", ""),
            package_server_pid=data.get("package_server_pid"),
            kube_proxy=bool(data.get("kube_proxy", False)),
            complete=bool(data.get("complete", False)),
        )


Named = TypeVar("Named", LabHost, LabPod)


def _named(items: list[Named], name: str, kind: str, when_empty: str) -> Named:
    """The item called ``name``; else a LookupError that lists the names there are."""
    for item in items:
        if item.name == name:
            return item
    known = ", ".join(item.name for item in items) or when_empty
    raise LookupError(f"no lab {kind} named {name!r}; {kind}s: {known}")


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """One command at a time changes the lab (pods, faults, up, down)."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
