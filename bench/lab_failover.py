#!/usr/bin/env python3
"""Failover times of the whole chain on the lab, printed as JSON.

The measurements are the lab tests' own (tests/lab/test_site.py, test_verify.py): one
session builds the lab, runs site.yml twice, moves the pod, stops the master LB, runs
`nodeport-lb verify`, and takes the lab down again. Keys (seconds):

- site_first_run_s, site_second_run_s: wall time of ansible-playbook site.yml (the second
  run changes nothing);
- new_pod_to_haproxy_up_s: a pod added on another node until HAProxy has that node UP;
- pod_moved_to_traffic_moved_s: old pod deleted until every request lands on the new node;
- master_lb_stopped_to_requests_ok_s: lb1 powered off until new connections succeed (VIP on lb2);
- lb1_started_to_vip_back_s: lb1 booted until it holds the VIP again;
- verify_s: `nodeport-lb verify` on the converged lab;
- master_lb_crash_requests: [seconds from lb1's power cut, answered?] for every request of a
  client looping on the VIP meanwhile; with --plot DIR, lab_failover.png shows them as
  ok/failed per 100 ms.

usage: sudo flock /tmp/nplb-lab.lock .venv/bin/python bench/lab_failover.py [--plot DIR]
       (the lab must be down: the run builds one and takes it down again)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import argument_parser, load_average, write_outputs  # noqa: E402


def timeline(requests: list[list[float | bool]], bin_s: float = 0.1) -> list[dict]:
    """ok/failed request counts per ``bin_s`` from the crash (negative: before it)."""
    bins: dict[int, dict[str, int]] = {}
    for at, ok in requests:
        slot = bins.setdefault(int(float(at) // bin_s), {"ok": 0, "failed": 0})
        slot["ok" if ok else "failed"] += 1
    return [{"from_s": round(k * bin_s, 1), **v} for k, v in sorted(bins.items())]


def main() -> int:
    parser = argument_parser(__doc__)
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="nodeport-lb-bench-") as scratch:
        out = Path(scratch) / "measured.json"
        tests = ["tests/lab/test_site.py", "tests/lab/test_verify.py"]
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:cacheprovider"],
            cwd=REPO,
            env={**os.environ, "NODEPORT_LB_LAB_MEASUREMENTS": str(out)},
            capture_output=True,
            text=True,
            check=False,
        )
        if not out.exists():
            print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
            return 1
        measured = json.loads(out.read_text())
    measured["tests_passed"] = result.returncode == 0
    if "master_lb_crash_requests" in measured:
        measured["master_lb_crash_timeline_100ms"] = timeline(measured["master_lb_crash_requests"])
    measured = {
        "bench": "lab_failover",
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "cpus": os.cpu_count(),
        **measured,
    }
    write_outputs(measured, args.plot, "lab_failover", "plot_lab_failover")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
