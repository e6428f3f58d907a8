#!/usr/bin/env python3
"""Benchmark the node proxy agent at 10,000 NodePort Services (issue 3), printing JSON.

Real agents, real kernel, real packets, all inside network namespaces this script creates
(10.77/16, 10.78/16) and removes again, whatever happens:

    client 10.77.0.10 ── bridge ─┬─ node-small 10.77.0.11 (10 Services)     ── pod 10.78.1.5/.6
                                 └─ node-big   10.77.0.12 (10,000 Services)  ── pod 10.78.2.5/.6

Measured:
- first full sync at 10,000 Services × 2 endpoints: the agent's own figure (compute + one nft
  transaction) and the wall time from process start until its rules are in (imports, reading
  20,000 store files, validation included);
- one endpoint change → rules applied and hcnp answer flipped (store write to effect), repeated
  to give a p99;
- first-packet latency: TCP connect time (SYN → SYN-ACK through DNAT to the pod and back) to
  10-Service vs 10,000-Service nodes, interleaved in the same run, and their ratio.

usage: sudo .venv/bin/python bench/agent_scale.py [--services 10000] [--flips 60]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nodeport_lb.store import ManifestStore, atomic_write_text  # noqa: E402
from tests.netns.netlib import (  # noqa: E402
    Lab,
    agent_cmd,
    http_get,
    in_netns,
    python_cmd,
    wait_for,
)
from tests.netns.objects import endpoint, endpoint_slice, service  # noqa: E402

PODSERVER = REPO / "tests" / "netns" / "podserver.py"
NODE_PORT_RANGE = "20000-39999"
FIRST_PORT = 20000
APP_PORT = 8080
HCNP = 39999
CLIENT = "10.77.0.10"
NODES = {"node-small": ("10.77.0.11", "10.78.1"), "node-big": ("10.77.0.12", "10.78.2")}


def build_topology(lab: Lab) -> None:
    bridge = lab.add_netns("br")
    lab.run(bridge, "ip", "link", "add", "br0", "type", "bridge")
    lab.run(bridge, "ip", "link", "set", "br0", "up")
    hosts = {"client": CLIENT, **{n: a for n, (a, _) in NODES.items()}}
    for host, address in hosts.items():
        ns = lab.add_netns(host)
        lab.link(ns, "eth0", bridge, host[:15])
        lab.run(bridge, "ip", "link", "set", host[:15], "master", "br0")
        lab.run(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
    for node, (_, subnet) in NODES.items():
        pod = lab.add_netns(f"pod-{node}")
        lab.link(pod, "eth0", lab.ns(node), "pod")
        for host in (5, 6):  # two endpoints per Service, both real
            lab.run(pod, "ip", "addr", "add", f"{subnet}.{host}/24", "dev", "eth0")
        lab.run(pod, "ip", "route", "add", "default", "via", f"{subnet}.1")
        lab.run(lab.ns(node), "ip", "addr", "add", f"{subnet}.1/24", "dev", "pod")
        lab.run(lab.ns(node), "sysctl", "-qw", "net.ipv4.ip_forward=1")
        lab.start(
            pod,
            *python_cmd(str(PODSERVER), "--name", node, "--port", str(APP_PORT)),
            log_name=f"pod-{node}.log",
        )
        wait_for(lambda n=node, s=subnet: http_get(lab.ns(n), f"{s}.5", APP_PORT)[0] == 200)


def lb_endpoints(subnet: str, node: str, ready: bool) -> list[dict]:
    return [
        endpoint(f"{subnet}.{h}", node, ready=ready, serving=ready, terminating=not ready)
        for h in (5, 6)
    ]


def write_store(store: ManifestStore, node: str, subnet: str, count: int) -> None:
    """``count`` NodePort Services × 2 endpoints; the first one is LoadBalancer + Local + hcnp."""
    store.path.mkdir(parents=True)
    for i in range(count):
        name = f"svc-{i:05d}"
        ports = [{"name": "http", "port": 80, "targetPort": APP_PORT, "nodePort": FIRST_PORT + i}]
        if i == 0:
            svc = service(name, ports, type="LoadBalancer", local=True, hcnp=HCNP)
        else:
            svc = service(name, ports)
        eps = endpoint_slice(name, APP_PORT, lb_endpoints(subnet, node, True), port_name="http")
        # plain writes: nobody reads the store yet (later changes use atomic renames)
        (store.path / f"service_default_{name}.json").write_text(json.dumps(svc))
        (store.path / f"endpointslice_default_{name}.json").write_text(json.dumps(eps))


def metric(lab: Lab, node: str, name: str) -> float | None:
    text = http_get(lab.ns(node), "127.0.0.1", 10249, "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": round(pick(0.5), 3),
        "p99": round(pick(0.99), 3),
        "max": round(ordered[-1], 3),
        "n": len(ordered),
    }


def start_agent(lab: Lab, node: str, store: ManifestStore) -> tuple[float, float]:
    """Start the agent; returns (wall seconds until its first sync, its full-sync figure)."""
    started = time.time()
    lab.start(
        lab.ns(node),
        *agent_cmd(
            node, store.path, "--service-node-port-range", NODE_PORT_RANGE, "--log-level", "info"
        ),
        log_name=f"agent-{node}.log",
    )
    synced = wait_for(
        lambda: metric(lab, node, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"),
        timeout=120,
        interval=0.01,
    )
    full = metric(lab, node, "nodeport_lb_last_full_sync_duration_seconds") or 0.0
    return synced - started, full


def hcnp_status(lab: Lab) -> int:
    return http_get(lab.ns("client"), NODES["node-big"][0], HCNP, timeout=1.0)[0]


def measure_flips(lab: Lab, store: ManifestStore, flips: int) -> tuple[list[float], list[float]]:
    """Toggle the hcnp Service's endpoints ready/not ready; ms from the store write to the
    agent's rules being applied, and to the hcnp answer flipping (seen from the client)."""
    subnet = NODES["node-big"][1]
    to_rules, to_hcnp = [], []
    ready = hcnp_status(lab) == 200
    path = store.path / "endpointslice_default_svc-00000.json"
    for _ in range(flips):
        ready = not ready
        eps = endpoint_slice(
            "svc-00000", APP_PORT, lb_endpoints(subnet, "node-big", ready), port_name="http"
        )
        before = metric(lab, "node-big", "kubeproxy_sync_proxy_rules_last_timestamp_seconds") or 0
        want = 200 if ready else 503
        atomic_write_text(path, json.dumps(eps))
        written = time.time()  # the rename just made the change visible
        wait_for(lambda w=want: hcnp_status(lab) == w, timeout=5, interval=0.001)
        to_hcnp.append((time.time() - written) * 1000)
        applied = wait_for(
            lambda b=before: (
                (t := metric(lab, "node-big", "kubeproxy_sync_proxy_rules_last_timestamp_seconds"))
                > b
                and t
            ),
            timeout=5,
            interval=0.005,
        )
        to_rules.append((applied - written) * 1000)
        time.sleep(0.05)
    return to_rules, to_hcnp


def connect_time_us(address: str, port: int) -> float:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.settimeout(2)
    try:
        start = time.perf_counter_ns()
        sock.connect((address, port))
        return (time.perf_counter_ns() - start) / 1000
    finally:
        sock.close()  # linger 0: RST, so no TIME_WAIT piles up


def measure_first_packet(lab: Lab, services: int, samples: int) -> dict:
    small, big = NODES["node-small"][0], NODES["node-big"][0]
    rng = random.Random(3)

    def run() -> tuple[list[float], list[float]]:
        small_t, big_t = [], []
        for i in range(samples + 200):
            a = connect_time_us(small, FIRST_PORT + 1 + rng.randrange(9))
            b = connect_time_us(big, FIRST_PORT + 1 + rng.randrange(services - 1))
            if i >= 200:  # warm-up (ARP, caches) excluded
                small_t.append(a)
                big_t.append(b)
        return small_t, big_t

    small_t, big_t = in_netns(lab.ns("client"), run)
    result = {"10_services_us": percentiles(small_t), f"{services}_services_us": percentiles(big_t)}
    result["ratio_p50"] = round(statistics.median(big_t) / statistics.median(small_t), 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10000)
    parser.add_argument("--flips", type=int, default=60)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="nplb-bench-"))
    lab = Lab(workdir)
    try:
        build_topology(lab)
        stores = {n: ManifestStore(workdir / f"store-{n}") for n in NODES}
        write_store(stores["node-small"], "node-small", NODES["node-small"][1], 10)
        write_store(stores["node-big"], "node-big", NODES["node-big"][1], args.services)
        start_agent(lab, "node-small", stores["node-small"])
        startup, full_sync = start_agent(lab, "node-big", stores["node-big"])
        wait_for(lambda: hcnp_status(lab) == 200, timeout=10)
        to_rules, to_hcnp = measure_flips(lab, stores["node-big"], args.flips)
        latency = measure_first_packet(lab, args.services, args.samples)
        rules = metric(lab, "node-big", "nodeport_lb_rules_programmed")
        result = {
            "services": args.services,
            "endpoints_per_service": 2,
            "nft_rules_programmed": rules,
            "full_sync_seconds": round(full_sync, 3),
            "startup_to_rules_applied_seconds": round(startup, 3),
            "endpoint_change_to_rules_applied_ms": percentiles(to_rules),
            "endpoint_change_to_hcnp_flip_ms": percentiles(to_hcnp),
            "first_packet_latency": latency,
        }
        result["targets_met"] = {
            "full_sync_le_2s": full_sync <= 2.0,
            "endpoint_change_le_100ms": max(
                percentiles(to_rules)["p99"], percentiles(to_hcnp)["p99"]
            )
            <= 100,
            "first_packet_ratio_le_1.2": latency["ratio_p50"] <= 1.2,
            "hcnp_flip_p99_le_100ms": result["endpoint_change_to_hcnp_flip_ms"]["p99"] <= 100,
        }
        print(json.dumps(result, indent=2))
        return 0
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
