"""The lab end to end: one lab for the whole session, always taken down (also on failure)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO
from ..support.collection import Installed, build_and_install

CLI = [sys.executable, "-m", "nodeport_lb"]
UP_TIMEOUT = 300  # debootstrap on a fresh machine; about 5 s with the cached base


def nodeport_lb(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*CLI, *args], cwd=REPO, text=True, capture_output=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"nodeport-lb {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


@dataclass(frozen=True)
class MachineSnapshot:
    """What the lab could leave behind on this machine."""

    netns: frozenset[str]
    mounts: frozenset[str]
    links: frozenset[str]
    processes: frozenset[tuple[int, str]]

    @classmethod
    def take(cls, lab_netns_inodes: frozenset[int] = frozenset()) -> MachineSnapshot:
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        links = json.loads(
            subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
        )
        with open("/proc/self/mounts") as table:
            mounts = frozenset(" ".join(line.split()[:3]) for line in table)
        return cls(
            netns=frozenset(line.split()[0] for line in netns.splitlines() if line.strip()),
            mounts=mounts,
            links=frozenset(link["ifname"] for link in links),
            processes=frozenset(_processes(lab_netns_inodes)),
        )

    def new_since(self, before: MachineSnapshot) -> dict[str, list[Any]]:
        return {
            "netns": sorted(self.netns - before.netns),
            "mounts": sorted(self.mounts - before.mounts),
            "links": sorted(self.links - before.links),
            "processes": sorted(self.processes - before.processes),
        }


def lab_netns_inodes() -> frozenset[int]:
    """The lab's namespaces as the kernel knows them: processes inside them outlive the names."""
    return frozenset(p.stat().st_ino for p in Path("/run/netns").glob("nplb-*"))


def _processes(lab_netns: frozenset[int]) -> Iterator[tuple[int, str]]:
    """Live (not zombie) processes of the lab: nspawn, echo pods, anything in a lab netns."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            zombie = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
            in_lab_netns = (proc / "ns" / "net").stat().st_ino in lab_netns
        except (OSError, IndexError):
            continue
        if zombie:
            continue
        if (
            in_lab_netns
            or "systemd-nspawn" in cmdline
            or "nodeport_lb.lab.echo" in cmdline
            or "nodeport_lb lab package-server" in cmdline
        ):
            yield int(proc.name), cmdline


def lab_leftovers(before: MachineSnapshot, netns_inodes: frozenset[int]) -> dict[str, list[Any]]:
    """New things since ``before`` that belong to the lab (other work may run on this machine:
    only the lab's names, paths and processes count)."""
    # a namespace number is reused once the lab's namespace is gone: one that another
    # test's named namespace holds now is not the lab's
    others = frozenset(
        p.stat().st_ino for p in Path("/run/netns").glob("*") if not p.name.startswith("nplb-")
    )
    new = MachineSnapshot.take(netns_inodes - others).new_since(before)
    return {
        "netns": [n for n in new["netns"] if n.startswith("nplb-")],
        "mounts": [m for m in new["mounts"] if "nodeport-lb" in m or "/run/netns/nplb-" in m],
        "links": [link for link in new["links"] if link.startswith("nplb-")],
        "processes": new["processes"],
    }


@dataclass
class Lab:
    before: MachineSnapshot
    up_seconds: float
    status: dict[str, Any]
    netns_inodes: frozenset[int] = frozenset()

    def remember_namespaces(self) -> None:
        self.netns_inodes |= lab_netns_inodes()


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for tool in ("systemd-nspawn", "debootstrap", "ip", "nsenter"):
        if shutil.which(tool) is None:
            pytest.skip(f"the lab needs {tool}")


# set while the session's own lab is up: a module that needs another kind of lab may take it
# down (it runs after every test of the session's lab, see pytest_collection_modifyitems)
SESSION_LAB_UP = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    _skip_unless_possible()
    status = json.loads(nodeport_lb("lab", "status", "--json", check=False).stdout)
    if status["hosts"]:
        pytest.skip("a lab is already up: the tests would take it down (`nodeport-lb lab down`)")
    nodeport_lb("lab", "down")  # leftovers of a crashed run, if any
    before = MachineSnapshot.take()
    the_lab: Lab | None = None
    try:
        began = time.monotonic()
        nodeport_lb("lab", "up", timeout=UP_TIMEOUT)
        up_seconds = time.monotonic() - began
        status = json.loads(nodeport_lb("lab", "status", "--json").stdout)
        the_lab = Lab(before, up_seconds, status, lab_netns_inodes())
        request.config.stash[SESSION_LAB_UP] = True
        yield the_lab
    finally:
        inodes = lab_netns_inodes() | (the_lab.netns_inodes if the_lab else frozenset())
        nodeport_lb("lab", "down", check=False)
        leftovers = lab_leftovers(before, inodes)
        assert not any(leftovers.values()), f"lab down left {leftovers}"


# `lab down` tests end the session's lab: everything else that uses it runs first. Modules
# that build a lab of their own (`lab up --kube-proxy`) replace the session's lab, so they
# run after its other tests and before those.
TEARDOWN_TESTS = ("test_down_leaves_nothing", "test_down_cleans_up_after_a_killed_up")
OWN_LAB_MODULES = ("test_kube_proxy_lab.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        if item.name in TEARDOWN_TESTS:
            return 2
        return 1 if item.path.name in OWN_LAB_MODULES else 0

    items.sort(key=rank)  # stable: the order within each group stays


ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


@contextlib.contextmanager
def own_lab(request: pytest.FixtureRequest, *up_args: str) -> Iterator[Lab]:
    """A lab of this module's own kind for the module, taken down (and checked) after it."""
    _skip_unless_possible()
    status = json.loads(nodeport_lb("lab", "status", "--json", check=False).stdout)
    if status["hosts"] and not request.config.stash.get(SESSION_LAB_UP, False):
        pytest.skip("a lab is already up: the tests would take it down (`nodeport-lb lab down`)")
    nodeport_lb("lab", "down")  # the session's lab, or leftovers of a crashed run
    request.config.stash[SESSION_LAB_UP] = False
    before = MachineSnapshot.take()
    the_lab: Lab | None = None
    try:
        began = time.monotonic()
        nodeport_lb("lab", "up", *up_args, timeout=UP_TIMEOUT)
        up_seconds = time.monotonic() - began
        status = json.loads(nodeport_lb("lab", "status", "--json").stdout)
        the_lab = Lab(before, up_seconds, status, lab_netns_inodes())
        yield the_lab
    finally:
        inodes = lab_netns_inodes() | (the_lab.netns_inodes if the_lab else frozenset())
        nodeport_lb("lab", "down", check=False)
        leftovers = lab_leftovers(before, inodes)
        assert not any(leftovers.values()), f"lab down left {leftovers}"


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """host -> {ok, changed, failed, …} from the PLAY RECAP."""
        recap = {}
        for line in self.output.split("PLAY RECAP", 1)[-1].splitlines():
            host, _, counts = line.partition(" : ")
            if counts:
                recap[host.strip()] = {
                    k: int(v) for k, v in (pair.split("=") for pair in counts.split())
                }
        return recap


# each failed unit of a host with its last log lines (systemd's message only points there)
_FAILED_UNITS_SCRIPT = (
    "for unit in $(systemctl --failed --no-legend --plain | cut -d' ' -f1); do "
    'echo "== $unit"; journalctl -u "$unit" --no-pager -n 30; done'
)


def failed_units_report() -> str:
    """The lab hosts' failed units and their logs, for the message of a failed run."""
    status = json.loads(nodeport_lb("lab", "status", "--json", check=False).stdout or "{}")
    reports = []
    for host in status.get("hosts", []):
        result = lab_exec(host["name"], _FAILED_UNITS_SCRIPT, check=False)
        if result.stdout.strip():
            reports.append(f"--- failed units on {host['name']}\n{result.stdout}")
    return "\n".join(reports) or "(no failed units on the lab hosts)"


def assert_succeeded(run: PlaybookRun) -> None:
    """A failed run's message: the end of Ansible's output, then what the hosts logged."""
    if run.returncode != 0:
        raise AssertionError(
            f"ansible-playbook exited {run.returncode}:\n{run.output[-4000:]}\n"
            + failed_units_report()
        )


def site(*args: str, timeout: float = 600, installed: Installed | None = None) -> PlaybookRun:
    """`ansible-playbook site.yml ARGS` on the lab inventory, timed: from the checkout, or
    with ``installed`` as a user of the installed collection runs it, from a directory
    with no checkout (`ansible-playbook nodeport_lb.core.site -i .../inventories/lab`)."""
    if installed is None:
        command = [str(ANSIBLE_PLAYBOOK), "site.yml", *args]
        cwd, env = REPO, {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    else:
        inventory = str(REPO / "inventories" / "lab")
        command = [str(ANSIBLE_PLAYBOOK), "nodeport_lb.core.site", "-i", inventory, *args]
        cwd, env = installed.outside, installed.env()
    began = time.monotonic()
    proc = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - began)


# Where a host's own changes land: the upper layer of its overlay (the base below is shared and
# read-only). What a host process writes on its own, whoever runs a playbook, is left out: logs,
# apt's binary caches, temporary files, systemd's timestamps.
UPPER = Path("/var/lib/nodeport-lb/lab/hosts")
VOLATILE = ("var/log/", "var/cache/apt/", "tmp/", "var/tmp/", "var/lib/systemd/", "root/.ansible/")
# a directory that is only copied up because Ansible made its remote temp directory in it
VOLATILE_DIRS = ("root/",)


def host_files(host: str) -> dict[str, tuple[int, int, int]]:
    """Every file a host has changed since its overlay was made: path -> (size, mtime, mode)."""
    upper = UPPER / host / "upper"
    files = {}
    for path in upper.rglob("*"):
        relative = str(path.relative_to(upper)) + ("/" if path.is_dir() else "")
        if relative.startswith(VOLATILE) or relative in VOLATILE_DIRS:
            continue
        info = path.lstat()
        files[relative] = (info.st_size, info.st_mtime_ns, info.st_mode)
    return files


def hosts_files(lab: Lab) -> dict[str, dict[str, tuple[int, int, int]]]:
    return {host["name"]: host_files(host["name"]) for host in lab.status["hosts"]}


def changed_files(before: dict[str, dict], after: dict[str, dict]) -> dict[str, list[str]]:
    """host -> the files added, removed or rewritten between two snapshots."""
    changed = {}
    for host, files in after.items():
        old = before.get(host, {})
        names = sorted(n for n in files.keys() | old.keys() if files.get(n) != old.get(n))
        if names:
            changed[host] = names
    return changed


def installed_packages(host: str) -> set[str]:
    out = lab_exec(host, "dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}\\n'")
    return {line.split()[0] for line in out.stdout.splitlines() if line.split()[1:2] == ["ii"]}


@dataclass
class Fresh:
    """The session's lab before site.yml ever ran on it: what its hosts had, and the dry run."""

    packages: dict[str, set[str]]  # host -> installed Debian packages
    check_run: PlaybookRun  # site.yml --check --diff
    check_changed_files: dict[str, list[str]]  # what that dry run changed on the hosts


@pytest.fixture(scope="session")
def fresh(lab: Lab) -> Fresh:
    """Taken before `converged`, which needs it: bare hosts and a dry run on them."""
    names = [host["name"] for host in lab.status["hosts"]]
    packages = {name: installed_packages(name) for name in names}
    before = hosts_files(lab)
    check_run = site("--check", "--diff")
    return Fresh(packages, check_run, changed_files(before, hosts_files(lab)))


@dataclass
class Converged:
    lab: Lab
    first_run: PlaybookRun
    measured: dict[str, float]  # what the lab tests measured, printed at the end


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return build_and_install(tmp_path_factory.mktemp("collection"))


@pytest.fixture(scope="session")
def converged(lab: Lab, fresh: Fresh, installed_collection: Installed) -> Iterator[Converged]:
    """site.yml run once on the session's lab (verification play included), after the dry
    run on its fresh hosts. The first run is a user's of the installed collection, from
    outside the checkout, and installs the packages; later runs go from the checkout."""
    first = site(installed=installed_collection)
    assert_succeeded(first)
    measured = {
        "site_check_fresh_s": round(fresh.check_run.seconds, 1),
        "site_first_run_s": round(first.seconds, 1),
    }
    state = Converged(lab, first, measured)
    yield state
    print(f"\nlab measurements: {json.dumps(state.measured)}")
    # bench/lab_failover.py runs these tests and prints what they measured
    if out := os.environ.get("NODEPORT_LB_LAB_MEASUREMENTS"):
        Path(out).write_text(json.dumps(state.measured, indent=2) + "\n")


def lab_exec(host: str, script: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return nodeport_lb("lab", "exec", host, "--", "sh", "-c", script, check=check)
