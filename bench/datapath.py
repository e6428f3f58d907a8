#!/usr/bin/env python3
"""The data path as ratios to a direct connection, measured with wrk in one run, as JSON.

Real kernel, real agent, real HAProxy, all inside network namespaces this script creates
(10.77/16, 10.78/16) and removes again, whatever happens:

    client 10.77.0.10 ── bridge ─┬─ node1 10.77.0.11 (agent) ── pod 10.78.1.5 (HAProxy: 200)
                                 └─ lb 10.77.0.20, VIP 10.77.0.100 (HAProxy → node1:nodePort)

Paths, each to its own pod port (a path never meets another's TIME_WAIT tuples in the pod):
- direct: client → pod:8081 (routed through node1, no NAT) — the baseline;
- local: client → node1:30082, eTP Local (DNAT only, the pod sees the client);
- cluster: client → node1:30083, eTP Cluster (DNAT + the agent's masquerade);
- cluster_fully_random: client → node1:30085, eTP Cluster with the masquerade statement
  switched to ``masquerade fully-random`` (kube-proxy's, and the agent's before) for this path
  only, then switched back — the before/after of the masquerade choice in the same run;
- vip: client → VIP:80 → HAProxy (mode tcp, HTTP check on the hcnp) → node1:30084 (Local).

Each path runs with keep-alive and with new connections (``Connection: close``, the pod closes
first and keeps the TIME_WAIT); requests/s, p50/p99 latency, ratio to direct from the same
round, the pod's TcpExtPAWSTimewait delta (SYNs refused against a TIME_WAIT), and for the VIP
the CPU HAProxy used. Rounds interleave the paths so a noisy neighbour hits all of them alike.

usage: sudo .venv/bin/python bench/datapath.py [--duration 3] [--rounds 3] [--connections 16]
           [--plot DIR]    (DIR gets datapath.json and datapath.png; needs the bench extra)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import argument_parser, load_average, write_outputs  # noqa: E402
from nodeport_lb.agent.rules import TABLE  # noqa: E402
from tests.support.netlib import Lab, agent_cmd, http_get, wait_for  # noqa: E402
from tests.support.objects import endpoint, endpoint_slice, service  # noqa: E402

CLIENT, NODE, LB, VIP = "10.77.0.10", "10.77.0.11", "10.77.0.20", "10.77.0.100"
POD_SUBNET, POD = "10.78.1", "10.78.1.5"
# path -> (address, port, pod port); nodePorts and pod ports differ per path
PATHS: dict[str, tuple[str, int, int]] = {
    "direct": (POD, 8081, 8081),
    "local": (NODE, 30082, 8082),
    "cluster": (NODE, 30083, 8083),
    "cluster_fully_random": (NODE, 30085, 8085),
    "vip": (VIP, 80, 8084),
}
VIP_NODE_PORT, VIP_HCNP = 30084, 32004
MODES = {"keepalive": [], "new_connections": ["-H", "Connection: close"]}
TARGETS = {"local": 0.95, "cluster": 0.9}  # ratio to direct, each mode

POD_HAPROXY = """\
# the pod: answers 200 itself, so the figures are the path's, not an application's
global
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
{frontends}
"""
POD_FRONTEND = """\
frontend port{port}
    bind :{port}
    http-request return status 200 content-type text/plain string "ok"
"""
# The LB as the project's plan renders it by default (mode tcp, no PROXY header, every node
# checked over HTTP on the hcnp), cut down to the one Service this bench needs.
LB_HAPROXY = f"""\
global
    maxconn 8000
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout check 2s
frontend vip
    bind {VIP}:80
    default_backend nodes
backend nodes
    option httpchk GET /
    http-check expect status 200
    server node1 {NODE}:{VIP_NODE_PORT} check port {VIP_HCNP} inter 1s
"""


def build(lab: Lab, workdir: Path) -> dict[str, Any]:
    bridge = lab.add_netns("br")
    lab.run(bridge, "ip", "link", "add", "br0", "type", "bridge")
    lab.run(bridge, "ip", "link", "set", "br0", "up")
    for host, address in {"client": CLIENT, "node1": NODE, "lb": LB}.items():
        ns = lab.add_netns(host)
        lab.link(ns, "eth0", bridge, host)
        lab.run(bridge, "ip", "link", "set", host, "master", "br0")
        lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
    lab.run(lab.ns("lb"), "ip", "addr", "add", f"{VIP}/32", "dev", "eth0")
    lab.run(lab.ns("client"), "ip", "route", "add", f"{POD_SUBNET}.0/24", "via", NODE)
    pod = lab.add_netns("pod")
    lab.link(pod, "eth0", lab.ns("node1"), "pod")
    lab.run(pod, "ip", "addr", "add", f"{POD}/24", "dev", "eth0")
    lab.run(pod, "ip", "route", "add", "default", "via", f"{POD_SUBNET}.1")
    lab.run(lab.ns("node1"), "ip", "addr", "add", f"{POD_SUBNET}.1/24", "dev", "pod")
    # the client is the one load generator: give it the ports a benchmark needs
    lab.run(lab.ns("client"), "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 60999")

    pod_cfg = workdir / "pod-haproxy.cfg"
    frontends = "".join(POD_FRONTEND.format(port=p) for _, _, p in PATHS.values())
    pod_cfg.write_text(POD_HAPROXY.format(frontends=frontends))
    lab.start(pod, "haproxy", "-db", "-f", str(pod_cfg), log_name="pod-haproxy.log")

    store = workdir / "store"
    store.mkdir()
    for name, (_, port, pod_port) in PATHS.items():
        if name == "direct":
            continue
        node_port = VIP_NODE_PORT if name == "vip" else port
        ports = [{"name": "http", "port": 80, "targetPort": pod_port, "nodePort": node_port}]
        if name == "vip":
            svc = service(name, ports, type="LoadBalancer", local=True, hcnp=VIP_HCNP)
        else:
            svc = service(name.replace("_", "-"), ports, local=name == "local")
        svc_name = svc["metadata"]["name"]
        eps = endpoint_slice(svc_name, pod_port, [endpoint(POD, "node1")], port_name="http")
        (store / f"service_default_{svc_name}.json").write_text(json.dumps(svc))
        (store / f"endpointslice_default_{svc_name}.json").write_text(json.dumps(eps))
    lab.start(lab.ns("node1"), *agent_cmd("node1", store), log_name="agent.log")
    wait_for(lambda: http_get(lab.ns("client"), NODE, VIP_HCNP)[0] == 200, timeout=60)

    lb_cfg = workdir / "lb-haproxy.cfg"
    lb_cfg.write_text(LB_HAPROXY)
    haproxy = lab.start(lab.ns("lb"), "haproxy", "-db", "-f", str(lb_cfg), log_name="lb.log")
    for address, port, _ in PATHS.values():
        wait_for(lambda a=address, p=port: http_get(lab.ns("client"), a, p)[0] == 200, timeout=30)
    return {"lb_haproxy_pid": haproxy.pid}


# --- the masquerade statement, switched for one path --------------------------------------------


def masquerade_rule(lab: Lab) -> tuple[str, str]:
    """(handle, text) of the agent's masquerade rule in its postrouting chain."""
    listing = lab.run(
        lab.ns("node1"), "nft", "-a", "list", "chain", *TABLE.split(), "nat-postrouting"
    ).stdout
    for line in listing.splitlines():
        if "masquerade" in line:
            text, _, handle = line.strip().rpartition("# handle ")
            return handle.strip(), text.strip()
    raise RuntimeError(f"no masquerade rule in the agent's table:\n{listing}")


def replace_masquerade(lab: Lab, handle: str, text: str) -> None:
    lab.run(
        lab.ns("node1"), "nft", "replace", "rule", *TABLE.split(), "nat-postrouting",
        "handle", handle, text,
    )  # fmt: skip


# --- wrk and the counters around it -------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict[str, float]:
    def latency(percent: str) -> float:
        match = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"wrk printed no {percent}% latency:\n{output}")
        return round(float(match[1]) * UNITS[match[2]], 3)

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if not rps:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{output}")
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_second": float(rps[1]),
        "latency_p50_ms": latency("50"),
        "latency_p99_ms": latency("99"),
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def netstat_counter(lab: Lab, netns: str, name: str) -> int:
    """A TcpExt counter of a namespace (/proc/net/netstat as seen from inside it)."""
    text = lab.run(lab.ns(netns), "cat", "/proc/net/netstat").stdout.splitlines()
    for header, values in zip(text[::2], text[1::2], strict=False):
        if header.startswith("TcpExt:"):
            fields = dict(zip(header.split()[1:], values.split()[1:], strict=True))
            return int(fields[name])
    raise RuntimeError("no TcpExt counters")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(lab: Lab, args: argparse.Namespace, path: str, mode: str, haproxy_pid: int) -> dict:
    address, port, _ = PATHS[path]
    paws = netstat_counter(lab, "pod", "PAWSTimewait")
    cpu = cpu_seconds(haproxy_pid)
    started = time.monotonic()
    cmd = [
        "wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
        "-d", f"{args.duration}s", *MODES[mode], f"http://{address}:{port}/",
    ]  # fmt: skip
    output = lab.run(lab.ns("client"), *cmd).stdout
    elapsed = time.monotonic() - started
    result = parse_wrk(output)
    result["pod_paws_timewait_rejects"] = netstat_counter(lab, "pod", "PAWSTimewait") - paws
    if path == "vip":
        result["haproxy_cpu_percent"] = round(100 * (cpu_seconds(haproxy_pid) - cpu) / elapsed, 1)
    return result


def measure(lab: Lab, args: argparse.Namespace, haproxy_pid: int) -> dict:
    handle, agent_rule = masquerade_rule(lab)
    fully_random = re.sub(r"masquerade.*$", "masquerade fully-random", agent_rule)
    rounds: list[dict] = []
    for _ in range(args.rounds):
        one: dict[str, dict] = {}
        for mode in MODES:
            for path in PATHS:
                if path == "cluster_fully_random":
                    replace_masquerade(lab, handle, fully_random)
                try:
                    one[f"{path}/{mode}"] = run_wrk(lab, args, path, mode, haproxy_pid)
                finally:
                    if path == "cluster_fully_random":
                        replace_masquerade(lab, handle, agent_rule)
                # the pod's TIME_WAIT of this path stays on its own port; wait a little so
                # the next path does not start while this one's FINs are still in flight
                time.sleep(0.5)
        rounds.append(one)
    summary: dict[str, dict] = {}
    for key in rounds[0]:
        path, mode = key.split("/")
        runs = [r[key] for r in rounds]
        direct = [r[f"direct/{mode}"]["requests_per_second"] for r in rounds]
        ratios = [run["requests_per_second"] / d for run, d in zip(runs, direct, strict=True) if d]
        entry = {
            "requests_per_second": round(statistics.median(r["requests_per_second"] for r in runs)),
            "latency_p50_ms": statistics.median(r["latency_p50_ms"] for r in runs),
            "latency_p99_ms": statistics.median(r["latency_p99_ms"] for r in runs),
            "ratio_to_direct": round(statistics.median(ratios), 3),
            "pod_paws_timewait_rejects": sum(r["pod_paws_timewait_rejects"] for r in runs),
            "socket_errors": sum(r["socket_errors"] for r in runs),
        }
        if path == "vip":
            entry["haproxy_cpu_percent"] = statistics.median(r["haproxy_cpu_percent"] for r in runs)
        if path in TARGETS:
            entry["target_ratio"] = f">= {TARGETS[path]}"
            entry["target_met"] = entry["ratio_to_direct"] >= TARGETS[path]
        summary.setdefault(mode, {})[path] = entry
    return {"agent_masquerade_rule": agent_rule, "summary": summary, "rounds": rounds}


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("haproxy"):
        print(
            "datapath: needs wrk and haproxy (scripts/bootstrap.sh installs them)", file=sys.stderr
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="nplb-datapath-"))
    lab = Lab(workdir)
    load_before = load_average()
    try:
        started = build(lab, workdir)
        measured = measure(lab, args, started["lb_haproxy_pid"])
        result = {
            "bench": "datapath",
            "wrk": {"threads": args.threads, "connections": args.connections,
                    "duration_s": args.duration, "rounds": args.rounds},
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "cpus": os.cpu_count(),
            "kernel": os.uname().release,
            **measured,
        }  # fmt: skip
        write_outputs(result, args.plot, "datapath", "plot_datapath")
        return 0
    except Exception:
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log.name}\n{log.read_text()[-2000:]}", file=sys.stderr)
        raise
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
