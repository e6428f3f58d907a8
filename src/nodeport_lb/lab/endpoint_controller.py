"""The lab's endpointslice controller: keeps EndpointSlices in step with Services and pods.

`lab up` starts it in the background (PID in the state file, ended by `lab down`), so Services
that Ansible writes into the store get their slices within a fraction of a second, as in a
cluster. It polls the store directory and the state file (cheap stats, every 100 ms): the
directory's mtime changes whenever a writer renames a file into it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from nodeport_lb.lab import endpoints
from nodeport_lb.lab.state import STATE_DIR, STATE_FILE, LabState, lab_lock
from nodeport_lb.lab.system import LabDaemon
from nodeport_lb.store import ManifestStore

POLL_INTERVAL = 0.1
LOG_FILE = STATE_DIR / "endpoint-controller.log"
DAEMON = LabDaemon("endpoint controller", "endpoint-controller", LOG_FILE)


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def run(store_path: Path) -> int:
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    seen: tuple[int, int] | None = None
    while not stopping:
        current = (_mtime(store_path), _mtime(STATE_FILE))
        if current != seen:
            seen = current
            # the lab lock orders us after a pod command's own sync, never before it
            with lab_lock():
                state = LabState.load()
                for change in endpoints.sync_endpoint_slices(ManifestStore(store_path), state.pods):
                    print(change, file=sys.stderr, flush=True)
            seen = (_mtime(store_path), _mtime(STATE_FILE))  # our own writes are no news
        time.sleep(POLL_INTERVAL)
    return 0


def start(store_path: Path) -> int:
    return DAEMON.start("--store", str(store_path))
