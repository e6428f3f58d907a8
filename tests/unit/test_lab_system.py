"""The lab's process helpers that need no lab."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nodeport_lb.lab import system


def test_a_lab_command_in_the_background_appends_to_its_log(tmp_path: Path) -> None:
    log_file = tmp_path / "state" / "daemon.log"  # its directory is made as needed
    for _ in range(2):
        process = system.start_lab_command(["--help"], log_file)
        assert process.wait(timeout=60) == 0
    assert log_file.read_text().count("usage: nodeport-lb lab") == 2


def test_pids_with_finds_a_process_by_its_command_line_marker() -> None:
    marker = f"nodeport-lb-test-{uuid.uuid4().hex}"
    process = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(60)", marker])
    try:
        assert system.wait_for(lambda: system.pids_with(marker) == [process.pid], 10)
    finally:
        process.kill()
        process.wait()
    assert system.pids_with(marker) == []


class _Daemons:
    """Makes LabDaemons whose command runs a Python one-liner, its command line holding the
    daemon's marker as a lab command's would, under a name no other test uses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: list[subprocess.Popen[bytes]] = []
        self.script = ""
        monkeypatch.setattr(system, "start_lab_command", self._start_lab_command)

    def make(self, script: str, **kwargs: Any) -> system.LabDaemon:
        self.script = script
        command = f"test-daemon-{uuid.uuid4().hex}"
        return system.LabDaemon("test daemon", command, self.tmp_path / "daemon.log", **kwargs)

    def _start_lab_command(self, args: list[str], log_file: Path) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", self.script, "nodeport_lb", "lab", *args])
        self.started.append(process)
        return process

    def end(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait()


@pytest.fixture
def daemons(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[_Daemons]:
    made = _Daemons(monkeypatch, tmp_path)
    try:
        yield made
    finally:
        made.end()


SLEEPS = "import time; time.sleep(60)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_lab_daemon_is_started_found_by_its_command_line_and_stopped(
    daemons: _Daemons,
) -> None:
    daemon = daemons.make(SLEEPS)
    pid = daemon.start("--store", "x")
    assert daemon.is_running(pid)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert cmdline.endswith(f"nodeport_lb lab {daemon.command} --store x ")
    leftover = daemon.start()  # one whose PID was not recorded
    assert sorted(daemon.stop_all(pid)) == sorted([pid, leftover])
    assert not daemon.is_running(pid) and not daemon.is_running(leftover)
    assert daemon.stop_all(pid) == []


def test_a_lab_daemon_that_exits_at_once_is_an_error_naming_its_log(daemons: _Daemons) -> None:
    daemon = daemons.make("raise SystemExit(2)")
    # waiting for it to listen: the exit is seen however slowly Python starts here
    with pytest.raises(
        system.LabError, match=r"the test daemon exited at once \(see .*daemon\.log\)"
    ):
        daemon.start(listens_on=("127.0.0.1", _free_port()))


def test_a_listening_lab_daemon_is_started_once_it_accepts_connections(
    daemons: _Daemons,
) -> None:
    port = _free_port()
    daemon = daemons.make(
        "import socket, time; s = socket.socket(); "
        f"s.bind(('127.0.0.1', {port})); time.sleep(0.3); s.listen(); time.sleep(60)"
    )
    pid = daemon.start(listens_on=("127.0.0.1", port))
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # listening when start returned
    assert daemon.stop_all(pid) == [pid]


def test_a_lab_daemon_that_does_not_listen_in_time_is_killed(daemons: _Daemons) -> None:
    daemon = daemons.make(SLEEPS, ready_timeout=0.3)
    with pytest.raises(system.LabError, match="the test daemon did not listen within 0s"):
        daemon.start(listens_on=("127.0.0.1", _free_port()))
    (process,) = daemons.started
    assert process.wait(timeout=10) == -signal.SIGKILL
