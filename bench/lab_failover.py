#!/usr/bin/env python3
"""Failover times of the whole chain on the lab (issue 5), printed as JSON.

The measurements are the lab tests' own (tests/lab/test_site.py, test_verify.py): one
session builds the lab, runs site.yml twice, moves the pod, stops the master LB, runs
`nodeport-lb verify`, and takes the lab down again. Keys (seconds):

- site_first_run_s, site_second_run_s: wall time of ansible-playbook site.yml (the second
  run changes nothing);
- new_pod_to_haproxy_up_s: a pod added on another node until HAProxy has that node UP;
- pod_moved_to_traffic_moved_s: old pod deleted until every request lands on the new node;
- master_lb_stopped_to_requests_ok_s: lb1 powered off until new connections succeed (VIP on lb2);
- lb1_started_to_vip_back_s: lb1 booted until it holds the VIP again;
- verify_s: `nodeport-lb verify` on the converged lab.

usage: sudo .venv/bin/python bench/lab_failover.py     (the lab must be down: it owns one)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
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
    print(json.dumps(measured, indent=2))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
