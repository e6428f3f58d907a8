"""The lab's process helpers that need no lab."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

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
