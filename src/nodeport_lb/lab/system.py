"""Small helpers to drive the machine: commands, prerequisites, our own processes, progress."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class LabError(RuntimeError):
    """A failure with a message meant for people (printed without a traceback)."""


# tool -> Debian package that provides it
REQUIRED_TOOLS = {
    "ip": "iproute2",
    "nsenter": "util-linux",
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "apt-get": "apt",  # downloads the hosts' packages
    "dpkg-scanpackages": "dpkg-dev",  # indexes them
}


def require_root_and_tools(tools: Sequence[str] = tuple(REQUIRED_TOOLS)) -> None:
    if os.geteuid() != 0:
        raise LabError(
            "the lab needs root (network namespaces, overlay mounts, systemd-nspawn): "
            "run it with sudo"
        )
    missing = sorted({REQUIRED_TOOLS[t] for t in tools if shutil.which(t) is None})
    if missing:
        raise LabError(
            f"missing tools for the lab; install them with:\n  apt-get install {' '.join(missing)}"
        )


def run(
    args: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise LabError with its stderr, not a traceback."""
    result = subprocess.run(
        list(args),
        text=True,
        capture_output=capture,
        input=input_text,
        env=env,
        check=False,
    )
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip()
        raise LabError(f"`{' '.join(args)}` failed ({result.returncode}): {detail}")
    return result


def process_alive(pid: int | None, cmdline_contains: str = "") -> bool:
    """True when ``pid`` runs and (to be sure it is still ours) its command line has the marker."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and cmdline_contains in cmdline


def pids_with(marker: str) -> list[int]:
    """Every live process whose command line has ``marker``: ours left over by a run that
    could not record their PIDs."""
    return [
        int(proc.name)
        for proc in Path("/proc").iterdir()
        if proc.name.isdigit() and process_alive(int(proc.name), marker)
    ]


def stop_process(
    pid: int | None, marker: str, timeout: float = 10.0, sig: int = signal.SIGTERM
) -> None:
    """Stop one process we started, by PID (checked against its command line), and wait."""
    if not process_alive(pid, marker):
        return
    assert pid is not None
    os.kill(pid, sig)
    if wait_for(lambda: not process_alive(pid, marker), timeout):
        return
    if process_alive(pid, marker):
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not process_alive(pid, marker), 5.0)


def start_lab_command(args: Sequence[str], log_file: Path) -> subprocess.Popen[bytes]:
    """``nodeport-lb lab ARGS`` in the background, in a session of its own so it outlives the
    command that starts it (`lab down` ends it by PID); its output is appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "nodeport_lb", "lab", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass(frozen=True)
class LabDaemon:
    """One of the lab's background daemons: `nodeport-lb lab COMMAND ...` in a session of its
    own, known by its command line, so `lab down` finds it where its PID was not recorded."""

    name: str  # for messages: "package server"
    command: str  # its `nodeport-lb lab` sub-command
    log_file: Path
    ready_timeout: float = 10.0  # for one that listens

    @property
    def marker(self) -> str:
        return f"nodeport_lb lab {self.command}"

    def start(self, *args: str, listens_on: tuple[str, int] | None = None) -> int:
        """Start it with ``args``; its PID once it runs and, with ``listens_on``, accepts
        connections there (else LabError, it is killed)."""
        process = start_lab_command([self.command, *args], self.log_file)
        if listens_on is None:
            time.sleep(0.05)  # long enough for a bad argument or a failed import to end it
        elif not wait_for(
            lambda: process.poll() is not None or _answers(listens_on), self.ready_timeout
        ):
            process.kill()
            raise LabError(f"the {self.name} did not listen within {self.ready_timeout:.0f}s")
        if process.poll() is not None:
            raise LabError(f"the {self.name} exited at once (see {self.log_file})")
        return process.pid

    def is_running(self, pid: int | None) -> bool:
        return process_alive(pid, self.marker)

    def stop_all(self, recorded_pid: int | None) -> list[int]:
        """Stop the one whose PID was recorded and any left over by a run that could not
        record it; the PIDs stopped."""
        stopped: list[int] = []
        for pid in {recorded_pid, *pids_with(self.marker)}:
            if pid is not None and self.is_running(pid):
                stop_process(pid, self.marker, timeout=5.0)
                stopped.append(pid)
        return stopped


def _answers(address: tuple[str, int]) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.5):
        return True
    return False


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return children


class Progress:
    """`==> step ... done (1.2s)` lines on stderr, so people see where `lab up` spends time."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"==> {what} ...", file=sys.stderr, flush=True)
        yield
        elapsed = time.monotonic() - began
        print(f"    done in {elapsed:.1f}s", file=sys.stderr, flush=True)

    def total(self) -> float:
        return time.monotonic() - self.started
