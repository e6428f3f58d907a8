#!/usr/bin/env python3
"""The node proxy agent at 1,000 / 10,000 / 50,000 NodePort Services, as curves, in JSON.

Real agents, real kernel, real packets, all inside network namespaces this script creates
(10.77/16, 10.78/16) and removes again, whatever happens:

    client 10.77.0.10 ── bridge ─┬─ node-small 10.77.0.11 (10 Services: the baseline)  ── pods
                                 └─ node-big   10.77.0.12 (N Services, N from --sizes)  ── pods

For each N, with the manifest store as the source:
- cold start: process start → the agent's first full sync is in (imports, reading 2N store
  files, validation, one nft transaction), and the agent's own full-sync figure;
- one endpoint change → rules applied and → hcnp answer flipped (store write to effect, p50/p99);
- restart: a second agent started over the table the first one left; start → rules in, and
  whether a nodePort kept answering from the old table meanwhile (probed every 10 ms). The
  agents run with --snapshot-file, as the systemd unit starts them: the restarted agent starts
  from the snapshot the first one wrote (the cold start has none: it is removed before);
- resident memory of the agent process, read from /proc/PID/status (outside the process);
- first-packet latency (TCP connect through DNAT) against the 10-Service node;
- where the time of a change goes: the same change path (inotify → read → parse → diff →
  compute → nft → health) driven in-process in a namespace of its own, timed per stage, and a
  cProfile breakdown of the functions that take it;
and with the Kubernetes API as the source (an HTTP stand-in in the node's namespace: a list of
N Services and N EndpointSlices, then watch events): start → rules in, change → hcnp flipped.

The package is byte-compiled first, as an installed one is (pip compiles at install): with
PYTHONDONTWRITEBYTECODE in the environment every agent start would compile its modules again.

Every figure is also given as a ratio to the 10-Service node, measured in the same run. The
machine is shared: the load average at start and end is in the output.

usage: sudo .venv/bin/python bench/agent_scale.py [--sizes 1000,10000,50000] [--flips 40]
           [--plot DIR]    (DIR gets agent_scale.json and the PNGs; needs the bench extra)
"""

from __future__ import annotations

import compileall
import cProfile
import json
import os
import pstats
import random
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import argument_parser, load_average, percentiles, write_outputs  # noqa: E402
from nodeport_lb.store import ManifestStore, atomic_write_text  # noqa: E402
from tests.support.netlib import (  # noqa: E402
    Lab,
    http_get,
    in_netns,
    python_cmd,
    wait_for,
)
from tests.support.objects import endpoint, endpoint_slice, service  # noqa: E402

PODSERVER = REPO / "tests" / "support" / "podserver.py"
# wide enough for 50,000 Services, above the agent's own listeners (nodeport_lb.defaults' ports)
NODE_PORT_RANGE = "11000-65000"
FIRST_PORT = 11000
HCNP = 65000
APP_PORT = 8080
API_PORT = 6443
CLIENT = "10.77.0.10"
NODES = {"node-small": ("10.77.0.11", "10.78.1"), "node-big": ("10.77.0.12", "10.78.2")}
BASELINE_SERVICES = 10
HCNP_SLICE = "endpointslice_default_svc-00000.json"

TARGETS_AT_10000 = {  # (figure, comparison, target)
    "full_sync_seconds": ("<=", 0.4),
    "endpoint_change_to_rules_applied_ms.p50": ("<=", 5.0),
    "endpoint_change_to_rules_applied_ms.p99": ("<=", 15.0),
    "endpoint_change_to_hcnp_flip_ms.p99": ("<=", 20.0),
    "restart_to_rules_applied_seconds": ("<=", 1.5),
    "resident_memory_mb": ("<=", 150.0),
}


# --- topology and objects ----------------------------------------------------------------------


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
    lab.add_netns("profile")  # the in-process change path programs its own table here


def lb_endpoints(subnet: str, node: str, ready: bool) -> list[dict]:
    return [
        endpoint(f"{subnet}.{h}", node, ready=ready, serving=ready, terminating=not ready)
        for h in (5, 6)
    ]


def cluster_objects(node: str, count: int, ready: bool = True) -> list[tuple[dict, dict]]:
    """``count`` NodePort Services × 2 endpoints; the first is LoadBalancer + Local + hcnp."""
    subnet = NODES[node][1]
    objects = []
    for i in range(count):
        name = f"svc-{i:05d}"
        ports = [{"name": "http", "port": 80, "targetPort": APP_PORT, "nodePort": FIRST_PORT + i}]
        if i == 0:
            svc = service(name, ports, type="LoadBalancer", local=True, hcnp=HCNP)
        else:
            svc = service(name, ports)
        eps = endpoint_slice(name, APP_PORT, lb_endpoints(subnet, node, ready), port_name="http")
        objects.append((svc, eps))
    return objects


def write_store(store: ManifestStore, node: str, count: int) -> None:
    shutil.rmtree(store.path, ignore_errors=True)
    store.path.mkdir(parents=True)
    for svc, eps in cluster_objects(node, count):
        name = svc["metadata"]["name"]
        # plain writes: nobody reads the store yet (later changes use atomic renames)
        (store.path / f"service_default_{name}.json").write_text(json.dumps(svc))
        (store.path / f"endpointslice_default_{name}.json").write_text(json.dumps(eps))


def hcnp_slice(node: str, ready: bool) -> dict:
    subnet = NODES[node][1]
    return endpoint_slice(
        "svc-00000", APP_PORT, lb_endpoints(subnet, node, ready), port_name="http"
    )


# --- reading the agent from outside ------------------------------------------------------------


def metric(lab: Lab, node: str, name: str) -> float | None:
    text = http_get(lab.ns(node), "127.0.0.1", 10249, "/metrics")[2].decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def resident_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, as the kernel accounts them."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "peak_rss_mb": fields["VmHWM"]}


def last_sync(lab: Lab, node: str) -> float:
    return metric(lab, node, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") or 0.0


def delete_table(lab: Lab, node: str) -> None:
    lab.run(lab.ns(node), "nft", "delete", "table", "inet", "nodeport-lb", check=False)


def start_agent(lab: Lab, node: str, source: list[str], log_name: str) -> tuple[Any, float, float]:
    """Start an agent; returns (process, seconds from start until its first sync is in, the
    agent's own full-sync figure)."""
    started = time.time()
    proc = lab.start(
        lab.ns(node),
        *python_cmd(
            "-m",
            "nodeport_lb",
            "agent",
            "--node-name",
            node,
            *source,
            "--service-node-port-range",
            NODE_PORT_RANGE,
            "--log-level",
            "info",
        ),
        log_name=log_name,
    )

    def synced_at() -> float:
        if proc.poll() is not None:  # fail at once, with the agent's reason
            log = (lab.workdir / log_name).read_text()[-2000:]
            raise SystemExit(f"agent_scale: the agent on {node} exited:\n{log}")
        return last_sync(lab, node)

    synced = wait_for(synced_at, timeout=900, interval=0.01)
    full = metric(lab, node, "nodeport_lb_last_full_sync_duration_seconds") or 0.0
    return proc, synced - started, full


def stop_agent(lab: Lab, proc: Any) -> None:
    lab.stop(proc)  # SIGTERM: the agent leaves its table in place
    lab.processes.remove(proc)


def hcnp_status(lab: Lab) -> int:
    return http_get(lab.ns("client"), NODES["node-big"][0], HCNP, timeout=1.0)[0]


# --- measurements ------------------------------------------------------------------------------


def measure_flips(
    lab: Lab, node: str, hcnp_port: int, change: Callable[[bool], None], flips: int
) -> tuple[list[float], list[float], list[float]]:
    """Toggle the hcnp Service's endpoints ready/not ready through ``change``; ms from the
    change to the agent's rules being applied, and to the hcnp answer flipping (as the client
    sees it), both from the start of the write; and how long the write itself took (a store
    write is a file written, fsync'ed and renamed: the agent sees it from the rename on)."""
    address = NODES[node][0]

    def status() -> int:
        return http_get(lab.ns("client"), address, hcnp_port, timeout=1.0)[0]

    to_rules, to_hcnp, writes = [], [], []
    ready = status() == 200
    for _ in range(flips):
        ready = not ready
        before = last_sync(lab, node)
        want = 200 if ready else 503
        written = time.time()
        change(ready)
        write_ms = (time.time() - written) * 1000
        try:
            wait_for(lambda w=want: status() == w, timeout=60, interval=0.001)
            to_hcnp.append((time.time() - written) * 1000)
            applied = wait_for(
                lambda b=before: (t := last_sync(lab, node)) > b and t, timeout=60, interval=0.005
            )
        except TimeoutError:
            print(f"agent_scale: a change on {node} took over a minute", file=sys.stderr)
            break  # what was measured so far stands; the JSON says how many
        to_rules.append((applied - written) * 1000)
        writes.append(write_ms)
        time.sleep(0.05)
    nan = [float("nan")]
    return to_rules or nan, to_hcnp or nan, writes or nan


def after_write(to_rules: list[float], writes: list[float]) -> dict[str, float]:
    """Change → rules applied counted from the end of the write (the rename) instead."""
    return percentiles([r - w for r, w in zip(to_rules, writes, strict=True)])


def rounded(values: list[float]) -> list[float]:
    return [round(v, 3) for v in values]


def store_change(store: ManifestStore, node: str) -> Callable[[bool], None]:
    def change(ready: bool) -> None:
        atomic_write_text(store.path / HCNP_SLICE, json.dumps(hcnp_slice(node, ready)))

    return change


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
            a = connect_time_us(small, FIRST_PORT + 1 + rng.randrange(BASELINE_SERVICES - 1))
            b = connect_time_us(big, FIRST_PORT + 1 + rng.randrange(services - 1))
            if i >= 200:  # warm-up (ARP, caches) excluded
                small_t.append(a)
                big_t.append(b)
        return small_t, big_t

    small_t, big_t = in_netns(lab.ns("client"), run)
    return {
        "baseline_us": percentiles(small_t),
        "measured_us": percentiles(big_t),
        "ratio_p50": round(statistics.median(big_t) / statistics.median(small_t), 3),
    }


class NodePortProbe:
    """Connects to a nodePort every 10 ms from the client, counting answers and failures."""

    def __init__(self, lab: Lab, node: str, port: int) -> None:
        self.ok = self.failed = 0
        self._stop = threading.Event()
        address = NODES[node][0]

        def probe() -> None:
            while not self._stop.is_set():
                try:
                    connect_time_us(address, port)
                    self.ok += 1
                except OSError:
                    self.failed += 1
                self._stop.wait(0.01)

        self._thread = threading.Thread(target=in_netns, args=(lab.ns("client"), probe))
        self._thread.start()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return {"connects_ok": self.ok, "connects_failed": self.failed}


def measure_restart(lab: Lab, node: str, source: list[str], label: str) -> dict:
    """A second agent over the table the first one left: start → rules in, traffic meanwhile."""
    probe = NodePortProbe(lab, node, FIRST_PORT + 1)
    try:
        time.sleep(0.2)  # some probes before the start
        proc, seconds, full = start_agent(lab, node, source, f"agent-{node}-{label}-restart.log")
        time.sleep(0.2)
    finally:
        served = probe.stop()  # its thread would keep a failed run from ending
    stop_agent(lab, proc)
    return {"seconds": round(seconds, 3), "full_sync_seconds": round(full, 3), **served}


# --- where a change's time goes (in-process, same code as the agent) ---------------------------

STAGES = ("inotify", "store_read_parse", "state_diff_validate_compute", "nft_sync", "health")
# functions whose cumulative time the profile reports per change (name fragment -> label)
PROFILED = {
    ("pathlib", "read_text"): "read file",
    ("store.py", "load_documents"): "parse (json/yaml)",
    ("store.py", "_set_file_objects"): "diff store objects",
    ("state.py", "apply"): "state apply (all)",
    ("validation", "validate_service"): "validate Service",
    ("endpoints.py", "parse_endpoint_slice"): "parse EndpointSlice",
    ("rules.py", "compute_service_rules"): "compute Service rules",
    ("rules.py", "partial_update"): "nft script (partial)",
    ("dataplane.py", "run_nft"): "nft transaction (libnftables)",
    ("dataplane.py", "_flush_stale_udp"): "conntrack clean-up",
    ("daemon.py", "_publish_health"): "health publish",
}


def profile_change_path(store_path: Path, node: str, changes: int) -> dict:
    """Run the agent's pieces by hand: one full sync, then ``changes`` endpoint changes timed
    per stage, then as many again under cProfile. Runs in the "profile" namespace."""
    from nodeport_lb.agent.daemon import Agent, AgentConfig, _collector_paused
    from nodeport_lb.agent.sources import StoreSource, _Inotify
    from nodeport_lb.model import NodePortRange

    config = AgentConfig(
        node_name=node,
        manifests=store_path,
        kubeconfig=None,
        healthz_address=None,
        metrics_address=None,
        node_port_range=NodePortRange.parse(NODE_PORT_RANGE),
    )
    agent = Agent(config)
    reader = agent.source.reader
    clock = time.perf_counter
    # as the agent reads a first listing: in parts, the cycle collector paused
    read = apply = 0.0
    with _collector_paused():
        t = clock()
        for part in reader.refresh_in_parts(StoreSource.PART_FILES):
            t1 = clock()
            agent.state.apply(part)
            read, apply, t = read + t1 - t, apply + clock() - t1, clock()
    t2 = clock()
    agent.dataplane.sync(agent.state.rules, None)
    t3 = clock()
    agent._publish_health(None)
    t4 = clock()
    full = {
        "store_read_parse": read,
        "state_diff_validate_compute": apply,
        "nft_sync": t3 - t2,
        "health": t4 - t3,
    }
    full = {k: round(v * 1000, 1) for k, v in full.items()}

    watcher = _Inotify(store_path)
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
    profiler = cProfile.Profile()
    ready = True
    for i in range(2 * changes):
        profiled = i >= changes
        ready = not ready
        atomic_write_text(store_path / HCNP_SLICE, json.dumps(hcnp_slice(node, ready)))
        s0 = clock()  # the rename just happened
        if profiled:
            profiler.enable()
        names: set[str] = set()
        while HCNP_SLICE not in names:
            names |= watcher.read(1.0)[0]
        s1 = clock()
        update = reader.refresh({store_path / n for n in names})
        s2 = clock()
        result = agent.state.apply(update)
        s3 = clock()
        agent.dataplane.sync(agent.state.rules, result.dirty)
        s4 = clock()
        agent._publish_health(result.dirty)
        s5 = clock()
        if profiled:
            profiler.disable()
            continue
        for stage, (a, b) in zip(
            STAGES, ((s0, s1), (s1, s2), (s2, s3), (s3, s4), (s4, s5)), strict=True
        ):
            samples[stage].append((b - a) * 1000)
    watcher.close()
    agent.dataplane.sync({}, None)  # leave an empty table behind, not N chains
    stats = pstats.Stats(profiler)
    per_change: dict[str, float] = {}
    top: list[dict] = []
    for (filename, _line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        for (fragment, name), label in PROFILED.items():
            if func == name and fragment in filename:
                per_change[label] = round(per_change.get(label, 0) + cumtime * 1000 / changes, 3)
        top.append(
            {
                "function": f"{Path(filename).name}:{func}",
                "calls_per_change": round(calls / changes, 1),
                "own_ms_per_change": round(tottime * 1000 / changes, 3),
                "cumulative_ms_per_change": round(cumtime * 1000 / changes, 3),
            }
        )
    top.sort(key=lambda row: row["own_ms_per_change"], reverse=True)
    return {
        "full_sync_stages_ms": full,
        "change_stages_ms_p50": {k: round(statistics.median(v), 3) for k, v in samples.items()},
        "change_stages_ms_p99": {k: percentiles(v)["p99"] for k, v in samples.items()},
        "change_total_ms_p50": round(
            statistics.median([sum(s) for s in zip(*samples.values(), strict=True)]), 3
        ),
        "cprofile_ms_per_change": per_change,
        "cprofile_top_own_time": top[:15],
    }


# --- the Kubernetes API as the source ----------------------------------------------------------

SLICES_PATH = "/apis/discovery.k8s.io/v1/endpointslices"


def write_kubeconfig(path: Path, url: str) -> None:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "bench",
                "clusters": [{"name": "bench", "cluster": {"server": url}}],
                "users": [{"name": "bench", "user": {"token": "bench"}}],
                "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
            }
        )
    )


def measure_api_source(lab: Lab, workdir: Path, node: str, count: int, flips: int) -> dict:
    """List of ``count`` Services and EndpointSlices from an HTTP stand-in of the API server
    in the node's namespace, then watch events toggling the hcnp Service's endpoints."""
    from tests.support.watch_api import FakeApi  # the agent's list+watch stand-in

    api = in_netns(lab.ns(node), FakeApi)
    try:
        objects = cluster_objects(node, count)
        api.items["/api/v1/services"] = [svc for svc, _ in objects]
        api.items[SLICES_PATH] = [eps for _, eps in objects]
        del objects
        kubeconfig = workdir / f"kubeconfig-{node}"
        write_kubeconfig(kubeconfig, api.url)
        delete_table(lab, node)
        proc, startup, full = start_agent(
            lab, node, ["--kubeconfig", str(kubeconfig)], f"agent-{node}-api-{count}.log"
        )
        port = HCNP

        def change(ready: bool) -> None:
            api.events[SLICES_PATH].put({"type": "MODIFIED", "object": hcnp_slice(node, ready)})

        wait_for(lambda: http_get(lab.ns("client"), NODES[node][0], port)[0] == 200, timeout=30)
        to_rules, to_hcnp, _ = measure_flips(lab, node, port, change, flips)
        memory = resident_mb(proc.pid)
        stop_agent(lab, proc)
        return {
            "start_to_rules_applied_seconds": round(startup, 3),
            "full_sync_seconds": round(full, 3),
            "watch_event_to_rules_applied_ms": percentiles(to_rules),
            "watch_event_to_hcnp_flip_ms": percentiles(to_hcnp),
            **memory,
            "samples_ms": {"to_rules": rounded(to_rules), "to_hcnp": rounded(to_hcnp)},
        }
    finally:
        api.server.handle_error = lambda *_: None  # clients gone at shutdown: not news
        for events in api.events.values():
            events.put(None)
        api.server.shutdown()
        api.server.server_close()


# --- one size, start to end ----------------------------------------------------------------------


def measure_store_source(
    lab: Lab, workdir: Path, node: str, count: int, flips: int, samples: int
) -> dict:
    store = ManifestStore(workdir / f"store-{node}")
    write_store(store, node, count)
    delete_table(lab, node)
    snapshot = workdir / f"snapshot-{node}"
    snapshot.unlink(missing_ok=True)  # a cold start: nothing from an earlier size
    source = ["--manifests", str(store.path), "--snapshot-file", str(snapshot)]
    proc, startup, full = start_agent(lab, node, source, f"agent-{node}-{count}.log")
    address = NODES[node][0]
    wait_for(lambda: http_get(lab.ns("client"), address, HCNP)[0] == 200, timeout=30)
    to_rules, to_hcnp, writes = measure_flips(lab, node, HCNP, store_change(store, node), flips)
    result: dict[str, Any] = {
        "services": count,
        "nft_rules_programmed": metric(lab, node, "nodeport_lb_rules_programmed"),
        "full_sync_seconds": round(full, 3),
        "cold_start_to_rules_applied_seconds": round(startup, 3),
        "endpoint_change_to_rules_applied_ms": percentiles(to_rules),
        "endpoint_change_to_hcnp_flip_ms": percentiles(to_hcnp),
        # not targets, to read the two above: the store write's own time (fsync included),
        # and change → rules applied from the end of that write
        "store_write_ms": percentiles(writes),
        "endpoint_change_to_rules_applied_after_write_ms": after_write(to_rules, writes),
        **resident_mb(proc.pid),
        "samples_ms": {"to_rules": rounded(to_rules), "to_hcnp": rounded(to_hcnp)},
    }
    result["resident_memory_mb"] = result["rss_mb"]
    if node == "node-big":
        result["first_packet_latency"] = measure_first_packet(lab, count, samples)
        stop_agent(lab, proc)
        restart = measure_restart(lab, node, source, str(count))
        result["restart"] = restart
        result["restart_to_rules_applied_seconds"] = restart["seconds"]
        result["profile"] = in_netns(
            lab.ns("profile"), lambda: profile_change_path(store.path, node, max(10, flips // 2))
        )
        shutil.rmtree(store.path, ignore_errors=True)
    return result


def ratios(size: dict, baseline: dict) -> dict[str, float]:
    def ratio(a: float, b: float) -> float:
        return round(a / b, 2) if b else float("nan")

    return {
        "change_to_rules_p50": ratio(
            size["endpoint_change_to_rules_applied_ms"]["p50"],
            baseline["endpoint_change_to_rules_applied_ms"]["p50"],
        ),
        "change_to_hcnp_p99": ratio(
            size["endpoint_change_to_hcnp_flip_ms"]["p99"],
            baseline["endpoint_change_to_hcnp_flip_ms"]["p99"],
        ),
        "cold_start": ratio(
            size["cold_start_to_rules_applied_seconds"],
            baseline["cold_start_to_rules_applied_seconds"],
        ),
        "resident_memory": ratio(size["rss_mb"], baseline["rss_mb"]),
    }


def lookup(result: dict, dotted: str) -> float:
    value: Any = result
    for part in dotted.split("."):
        value = value[part]
    return float(value)


def targets_side_by_side(at_10000: dict) -> list[dict]:
    rows = []
    for figure, (op, target) in TARGETS_AT_10000.items():
        measured = lookup(at_10000, figure)
        rows.append(
            {
                "figure": figure,
                "target": f"{op} {target}",
                "measured": measured,
                "met": measured <= target,
            }
        )
    return rows


def main() -> int:
    parser = argument_parser(__doc__, "write JSON and PNGs here")
    parser.add_argument(
        "--sizes", default="1000,10000,50000", help="Service counts, comma-separated"
    )
    parser.add_argument("--flips", type=int, default=40, help="endpoint changes per size")
    parser.add_argument("--samples", type=int, default=1000, help="first-packet connects")
    parser.add_argument("--no-api", action="store_true", help="skip the Kubernetes API source")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    # a TERM (timeout, kill) unwinds like an error: the namespaces and processes are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    compileall.compile_dir(str(REPO / "src" / "nodeport_lb"), quiet=1)
    workdir = Path(tempfile.mkdtemp(prefix="nplb-bench-"))
    lab = Lab(workdir)
    load_before = load_average()
    try:
        build_topology(lab)
        baseline = measure_store_source(
            lab, workdir, "node-small", BASELINE_SERVICES, args.flips, args.samples
        )
        curves = []
        for count in sizes:
            print(f"agent_scale: {count} Services", file=sys.stderr, flush=True)
            size = measure_store_source(lab, workdir, "node-big", count, args.flips, args.samples)
            size["ratio_to_10_services"] = ratios(size, baseline)
            if not args.no_api:
                size["api_source"] = measure_api_source(lab, workdir, "node-big", count, args.flips)
            curves.append(size)
            if args.plot:  # a long run keeps what it measured so far
                args.plot.mkdir(parents=True, exist_ok=True)
                (args.plot / "agent_scale.partial.json").write_text(json.dumps(curves, indent=1))
        result: dict[str, Any] = {
            "bench": "agent_scale",
            "endpoints_per_service": 2,
            "load_average_before": load_before,
            "load_average_after": load_average(),
            "cpus": os.cpu_count(),
            "baseline_10_services": baseline,
            "sizes": curves,
        }
        at_10000 = next((c for c in curves if c["services"] == 10000), None)
        if at_10000:
            result["targets_at_10000"] = targets_side_by_side(at_10000)
        write_outputs(result, args.plot, "agent_scale", "plot_agent_scale")
        if args.plot:  # the whole result is written: what a long run kept so far is not needed
            (args.plot / "agent_scale.partial.json").unlink(missing_ok=True)
        return 0
    finally:
        lab.close()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
