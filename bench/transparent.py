#!/usr/bin/env python3
"""What the client's address costs: requests/s and p99 latency through the VIP in transparent
mode and with PROXY v2, against the same pod straight at nodeIP:nodePort, in one run, as JSON.

Real HAProxy (as the haproxy user with the role's capabilities), nftables TPROXY rules on the
load balancers and the agent's NodePort rules and return path on the node, all inside network
namespaces this script creates and removes again, whatever happens (tests/lb/rack.py):

    client ── VIP:80 (transparent) ─┐
           ── VIP:81 (PROXY v2) ────┼─ lb1 HAProxy ─┐
           ── node1:31002 (direct) ─┴───────────────┴─ node1 ── echo pod (understands both)

wrk (one thread, --connections) drives each path for --seconds, in rounds that alternate the
three paths so that the shared machine's load hits them alike; the median round is reported.
Two workloads: new connection per request (`Connection: close`: each request pays HAProxy's
connect from the client's address, conntrack marks and policy routing) and keep-alive. Ratios
are to the direct path measured in the same run (requests/s: higher is better; p99: lower).

usage: sudo .venv/bin/python bench/transparent.py [--seconds 5] [--rounds 3]
           [--connections 16]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import load_average, write_outputs  # noqa: E402
from tests.lb.rack import NODE, VIP, RackService, build_rack  # noqa: E402
from tests.support.netlib import Lab, lab_session, wait_for  # noqa: E402

TRANSPARENT = RackService("bench-transparent", 80, 31001, 31897, {})
PROXY_V2 = RackService("bench-proxy", 81, 31002, 31898, {"client_address": "proxy-v2"})
PATHS = {
    "transparent": (VIP, TRANSPARENT.port),
    "proxy_v2": (VIP, PROXY_V2.port),
    "direct": (NODE, PROXY_V2.node_port),  # the echo tells a PROXY header from none
}
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"not a latency as wrk prints it: {text!r}")
    number, unit = match.groups()
    return float(number) * _UNITS[unit]


def run_wrk(lab: Lab, target: tuple[str, int], seconds: int, connections: int, close: bool):
    address, port = target
    command = [
        "wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{seconds}s",
        "--latency", f"http://{address}:{port}/",
    ]  # fmt: skip
    if close:
        command[1:1] = ["--header", "Connection: close"]
    out = lab.run(lab.ns("client"), *command).stdout
    rate = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
    if not (rate and p99 and p50):
        raise RuntimeError(f"wrk said:\n{out}")
    return {
        "requests_per_s": round(float(rate.group(1)), 1),
        "p50_ms": round(_ms(p50.group(1)), 3),
        "p99_ms": round(_ms(p99.group(1)), 3),
        "errors": errors.group(0) if errors else "",
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="nplb-bench-transparent-"))
    workdir.chmod(0o755)
    logs = workdir / "logs"
    logs.mkdir()
    try:
        with lab_session(logs) as lab:
            rack = build_rack(
                lab, workdir, logs, app="echo", services=(TRANSPARENT, PROXY_V2),
                haproxy_settings={"maxconn": 4000},
            )  # fmt: skip
            for port in (TRANSPARENT.port, PROXY_V2.port):
                wait_for(lambda p=port: rack.get("/", p)[0] == 200, timeout=20, interval=0.2)
            result: dict[str, Any] = {
                "seconds_per_path": args.seconds,
                "rounds": args.rounds,
                "connections": args.connections,
                "load_average_start": load_average(),
            }
            for workload, close in (("new_connection_per_request", True), ("keep_alive", False)):
                rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
                for _ in range(args.rounds):
                    for name, target in PATHS.items():
                        rounds[name].append(
                            run_wrk(lab, target, args.seconds, args.connections, close)
                        )
                result[workload] = _summary(rounds)
            result["load_average_end"] = load_average()
            return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _summary(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    median = {
        name: {
            key: round(statistics.median(r[key] for r in runs), 3)
            for key in ("requests_per_s", "p50_ms", "p99_ms")
        }
        | {"errors": sorted({r["errors"] for r in runs if r["errors"]})}
        for name, runs in rounds.items()
    }
    direct = median["direct"]
    ratios = {
        name: {
            "requests_per_s_vs_direct": round(m["requests_per_s"] / direct["requests_per_s"], 3),
            "p99_vs_direct": round(m["p99_ms"] / direct["p99_ms"], 3),
        }
        for name, m in median.items()
        if name != "direct"
    }
    ratios["transparent_vs_proxy_v2"] = {
        "requests_per_s": round(
            median["transparent"]["requests_per_s"] / median["proxy_v2"]["requests_per_s"], 3
        ),
        "p99": round(median["transparent"]["p99_ms"] / median["proxy_v2"]["p99_ms"], 3),
    }
    return {"median": median, "ratios": ratios, "rounds": rounds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="per path and round (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    args = parser.parse_args()
    for tool in ("wrk", "haproxy", "setpriv"):
        if shutil.which(tool) is None:
            print(f"bench/transparent.py needs {tool} (scripts/bootstrap.sh)", file=sys.stderr)
            return 2
    write_outputs(measure(args), None, "transparent", "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
