"""Real network namespaces for the tests: create, wire, run processes, and always clean up.

Every name starts with ``nplbt-<pid>-`` so parallel runs never collide and leftovers are
recognisable; everything lives inside namespaces this module created (10.77/16, 10.78/16),
nothing is added to the root namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = itertools.count()
REPO = Path(__file__).resolve().parents[2]


def sh(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return proc


def in_netns(netns: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a thread that joined ``netns`` (sockets it makes stay in that netns)."""
    result: list[Any] = []

    def target() -> None:
        try:
            with open(f"/run/netns/{netns}") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            result.append((True, fn()))
        except BaseException as exc:  # handed to the caller
            result.append((False, exc))

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    ok, value = result[0]
    if not ok:
        raise value
    return value


class Lab:
    """Namespaces and processes of one test module; ``close()`` removes all of them."""

    def __init__(self, workdir: Path) -> None:
        self.prefix = f"nplbt-{os.getpid()}-{next(_counter)}"
        self.workdir = workdir
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []

    def ns(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def add_netns(self, short: str) -> str:
        name = self.ns(short)
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        for knob in ("net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            sh("ip", "netns", "exec", name, "sysctl", "-qw", knob)
        return name

    def link(self, a: str, a_if: str, b: str, b_if: str) -> None:
        """A veth pair created inside the namespaces themselves (never in the root one)."""
        sh("ip", "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b)
        sh("ip", "-n", a, "link", "set", a_if, "up")
        sh("ip", "-n", b, "link", "set", b_if, "up")

    def run(self, netns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", netns, *cmd, check=check)

    def start(
        self, netns: str, *cmd: str, log_name: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "ab")  # noqa: SIM115 (lives as long as the process)
        proc = subprocess.Popen(
            [shutil.which("ip") or "ip", "netns", "exec", netns, *cmd],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
        self.processes.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def close(self) -> None:
        for proc in self.processes:
            with contextlib.suppress(ProcessLookupError):
                self.stop(proc, signal.SIGKILL)
        for name in reversed(self.namespaces):
            sh("ip", "netns", "del", name, check=False)
        self.namespaces.clear()


def python_cmd(*args: str) -> tuple[str, ...]:
    return (sys.executable, *args)


def agent_cmd(node: str, store: Path, *extra: str) -> tuple[str, ...]:
    return python_cmd(
        "-m",
        "nodeport_lb",
        "agent",
        "--node-name",
        node,
        "--manifests",
        str(store),
        "--log-level",
        "debug",
        *extra,
    )


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.02) -> T:
    """Poll until ``check`` returns something truthy; the last exception explains a timeout."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s (last error: {last!r})")


# --- clients that run inside a namespace -----------------------------------------------------


def http_get(
    netns: str, host: str, port: int, path: str = "/", timeout: float = 2.0
) -> tuple[int, dict[str, str], bytes]:
    def get() -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    return in_netns(netns, get)


def scrape_metrics(netns: str, port: int = 10249) -> dict[tuple[str, frozenset], float]:
    """The agent's /metrics as a Prometheus scraper parses it: (name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    text = http_get(netns, "127.0.0.1", port, "/metrics")[2].decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def tcp_connect(netns: str, host: str, port: int, timeout: float = 2.0) -> socket.socket:
    return in_netns(netns, lambda: socket.create_connection((host, port), timeout=timeout))


def connect_outcome(netns: str, host: str, port: int, timeout: float = 1.0) -> str:
    """'open', 'refused' (RST / ICMP unreachable) or 'timeout' (silently dropped)."""
    try:
        tcp_connect(netns, host, port, timeout).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"


def udp_request(
    netns: str, host: str, port: int, payload: bytes = b"hi", timeout: float = 1.0
) -> bytes:
    def ask() -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(payload, (host, port))
            return sock.recv(2048)

    return in_netns(netns, ask)


@contextlib.contextmanager
def lab_session(workdir: Path) -> Iterator[Lab]:
    lab = Lab(workdir)
    try:
        yield lab
    finally:
        lab.close()
