#!/usr/bin/env python3
"""A site.yml run that has nothing to change, on the lab's six hosts, printed as JSON.

The lab must be up; the bench converges it first (one ordinary run), then times --runs more
runs, each of which must change nothing. Every run's tasks are timed by Ansible's own junit
callback, so the output says where a no-op run's seconds go: per play, and the tasks that
take longest (summed over the hosts they ran on, and as wall time: the slowest host).

The baseline, measured in the same run: `ansible all -m ansible.builtin.ping` under Ansible's
plain linear strategy, one module round trip on every host (the floor of any task), given as
the no-op run's ratio to it.

usage: sudo flock /tmp/nplb-lab.lock .venv/bin/python bench/site_noop.py [--runs 3]
           [--plot DIR]    (DIR gets site_noop.json and site_noop.png)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import argument_parser, load_average, write_outputs  # noqa: E402

BIN = Path(sys.executable).parent
TOP_TASKS = 15


PLAIN_LINEAR = {"ANSIBLE_STRATEGY": "linear"}


def ansible(
    tool: str, *args: str, junit_dir: Path | None = None, env_extra: dict[str, str] | None = None
) -> tuple[float, str]:
    """Run an Ansible tool in the checkout (its ansible.cfg: the lab inventory); wall seconds
    and output. A failed run ends the bench: its timings would mean nothing."""
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **(env_extra or {})}
    if junit_dir is not None:
        env |= {
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.builtin.junit",
            "JUNIT_OUTPUT_DIR": str(junit_dir),
        }
    began = time.monotonic()
    proc = subprocess.run(
        [str(BIN / tool), *args], cwd=REPO, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        sys.exit(f"{tool} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return seconds, proc.stdout


def changed_count(output: str) -> int:
    total = 0
    for line in output.split("PLAY RECAP", 1)[-1].splitlines():
        for pair in line.partition(" : ")[2].split():
            key, _, value = pair.partition("=")
            if key == "changed":
                total += int(value)
    return total


def task_times(junit_dir: Path) -> list[dict[str, Any]]:
    """Seconds per task and host from the junit callback's report: a case is named
    "[HOST] PLAY: TASK", its class is the task's file:line."""
    tasks: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    ran: dict[tuple[str, str, str], int] = defaultdict(int)
    for report in junit_dir.glob("*.xml"):
        for case in ET.parse(report).getroot().iter("testcase"):
            host, _, rest = case.get("name", "").lstrip("[").partition("] ")
            play, _, task = rest.partition(": ")
            where = case.get("classname", "").replace(str(REPO) + "/", "")
            tasks[(play, task, where)][host] = float(case.get("time", 0.0))
            ran[(play, task, where)] += case.find("skipped") is None
    return [
        {
            "play": play,
            "task": task,
            "where": where,
            "hosts": len(per_host),
            "ran_on": ran[(play, task, where)],
            "sum_s": round(sum(per_host.values()), 3),
            "slowest_s": round(max(per_host.values()), 3),
        }
        for (play, task, where), per_host in tasks.items()
    ]


def cpu_steal() -> tuple[int, int]:
    """(steal, total) CPU ticks so far (/proc/stat): on a shared virtual machine the host's
    other guests take CPU time the load average does not show."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--runs", type=int, default=3, help="timed no-op runs (default 3)")
    args = parser.parse_args()
    load_before = load_average()

    print("converging the lab (one ordinary site.yml run)...", file=sys.stderr)
    converge_s, _ = ansible("ansible-playbook", "site.yml")
    ping = [
        ansible("ansible", "all", "-m", "ansible.builtin.ping", env_extra=PLAIN_LINEAR)[0]
        for _ in range(3)
    ]
    runs = []
    steal_before = cpu_steal()
    for number in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="nodeport-lb-bench-") as scratch:
            junit = Path(scratch)
            seconds, output = ansible("ansible-playbook", "site.yml", junit_dir=junit)
            tasks = task_times(junit)
        print(f"no-op run {number}: {seconds:.1f} s", file=sys.stderr)
        changed = changed_count(output)
        runs.append({"seconds": round(seconds, 2), "changed": changed, "tasks": tasks})

    steal_after = cpu_steal()
    median = statistics.median(r["seconds"] for r in runs)
    ping_s = statistics.median(ping)
    last = runs[-1]["tasks"]
    per_play: dict[str, float] = defaultdict(float)
    for task in last:
        per_play[task["play"]] += task["slowest_s"]
    result = {
        "bench": "site_noop",
        "hosts": 6,
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "converge_run_s": round(converge_s, 2),
        "baseline_ping_all_s": round(ping_s, 3),
        "noop_runs_s": [r["seconds"] for r in runs],
        "noop_changed": [r["changed"] for r in runs],
        "noop_median_s": round(median, 2),
        "noop_ratio_to_ping": round(median / ping_s, 1),
        "python_writes_bytecode": not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "target_noop_s": 20.0,
        "met": median <= 20.0,
        "tasks_timed": len(last),
        # task runs summed over the hosts, without the skipped ones: what the runs cost apart
        # from the machine's speed
        "task_runs": sum(t["ran_on"] for t in last),
        "cpu_steal_fraction": round(
            (steal_after[0] - steal_before[0]) / max(steal_after[1] - steal_before[1], 1), 3
        ),
        "per_play_wall_s": {play: round(s, 2) for play, s in per_play.items()},
        "slowest_tasks": sorted(last, key=lambda t: t["slowest_s"], reverse=True)[:TOP_TASKS],
        "load_average_after": load_average(),
    }
    write_outputs(result, args.plot, "site_noop", "plot_site_noop")
    return 0 if all(r["changed"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
