#!/usr/bin/python3
"""A STAND-IN for kube-proxy on lab nodes, because the real binary cannot be installed here.

`nodeport-lb lab up --kube-proxy` installs this file on every node as /usr/local/bin/kube-proxy
(so its process is named kube-proxy) and runs it as kube-proxy.service. It keeps kube-proxy's
observable contract in nftables mode, which is all that nodeport-lb may rely on beside a real
cluster:

- the table ``ip kube-proxy``: NodePort traffic looked up in the verdict map
  ``service-nodeports`` (protocol . port), one ``external-`` chain per Service port, the
  ``service-`` (Cluster) and ``local-`` (this node's endpoints) chains picking an endpoint with
  ``numgen random``, one ``endpoint-`` chain per endpoint doing the DNAT; eTP Cluster marks
  0x4000 for masquerade, eTP Local keeps the client's address; ports without endpoints are
  rejected, eTP Local ports without a local endpoint dropped (``no-endpoint-nodeports``);
- one healthCheckNodePort server per LoadBalancer + Local Service, answering any path and
  method as kube-proxy does byte for byte (Go net/http's header order, tab-indented body
  without a trailing newline, ``X-Load-Balancing-Endpoint-Weight``);
- ``/healthz`` and ``/livez`` (node drain counts for /healthz only) and ``/metrics`` on the
  addresses its unit gives it, kube-proxy's own defaults (``--healthz-bind-address``,
  ``--metrics-bind-address``).

It is deliberately separate from nodeport-lb's own agent (no import of it, its own rules and
answers written from kube-proxy's documented behaviour), so tests of the agent beside it check
the agent against an independent kube-proxy, not against itself. Its input is the lab's
control plane, the manifest store the nodes mount read-only (a real kube-proxy watches the
API server for the same objects). It needs python3, python3-yaml and nft, nothing of
nodeport-lb: it is copied to the node as one file, so the lab passes it the addresses instead of
this file keeping another copy of the port numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("kube-proxy")

TABLE = "ip kube-proxy"
MASQUERADE_BIT = 0x4000
POLL_SECONDS = 0.1
DRAIN_TAINT = "ToBeDeletedByClusterAutoscaler"
STARTED_MONOTONIC = time.monotonic()


# --- the cluster as the store has it ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    node: str
    ready: bool
    serving: bool
    terminating: bool


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str  # tcp, udp, sctp
    port: int
    node_port: int
    cluster_ip: str
    local: bool  # externalTrafficPolicy Local
    endpoints: tuple[Endpoint, ...]

    @property
    def id(self) -> str:
        """kube-proxy's chain name base: namespace/name/protocol/portName."""
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"


@dataclass
class Cluster:
    node: str = ""  # this node's name, as in EndpointSlices' nodeName
    ports: list[ServicePort] = field(default_factory=list)
    # "namespace/name" -> healthCheckNodePort, for LoadBalancer + Local Services
    health_check_ports: dict[str, int] = field(default_factory=dict)
    # "namespace/name" -> this node's ready endpoints (addresses, all ports together)
    local_ready: dict[str, int] = field(default_factory=dict)
    node_eligible: bool = True


def read_store(directory: Path) -> list[dict[str, Any]]:
    """Every object of every manifest file; a file that does not parse is skipped (logged)."""
    objects: list[dict[str, Any]] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or path.suffix not in (".yaml", ".yml", ".json"):
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        for doc in docs:
            if isinstance(doc, dict) and doc.get("kind") == "List":
                objects += [o for o in doc.get("items") or [] if isinstance(o, dict)]
            elif isinstance(doc, dict):
                objects.append(doc)
    return objects


def _slice_endpoints(
    slices: list[dict[str, Any]], port_name: str, protocol: str
) -> tuple[Endpoint, ...]:
    found: dict[tuple[str, int], Endpoint] = {}
    for endpoint_slice in slices:
        if endpoint_slice.get("addressType", "IPv4") != "IPv4":
            continue
        numbers = [
            p.get("port")
            for p in endpoint_slice.get("ports") or []
            if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol
        ]
        if not numbers or not isinstance(numbers[0], int):
            continue
        for item in endpoint_slice.get("endpoints") or []:
            conditions = item.get("conditions") or {}
            ready = conditions.get("ready") is not False  # unset means ready
            serving = conditions.get("serving", ready) is not False
            terminating = conditions.get("terminating") is True
            for address in (item.get("addresses") or [])[:1]:  # the first address is used
                found[(address, numbers[0])] = Endpoint(
                    address, numbers[0], item.get("nodeName") or "", ready, serving, terminating
                )
    return tuple(found[k] for k in sorted(found))


def build_cluster(objects: list[dict[str, Any]], node_name: str) -> Cluster:
    cluster = Cluster(node=node_name)
    slices: dict[str, list[dict[str, Any]]] = {}
    services = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        if obj.get("kind") == "EndpointSlice":
            owner = (meta.get("labels") or {}).get("kubernetes.io/service-name")
            if owner:
                slices.setdefault(f"{namespace}/{owner}", []).append(obj)
        elif obj.get("kind") == "Service":
            services.append(obj)
        elif obj.get("kind") == "Node" and meta.get("name") == node_name:
            taints = (obj.get("spec") or {}).get("taints") or []
            cluster.node_eligible = not meta.get("deletionTimestamp") and not any(
                isinstance(t, dict) and t.get("key") == DRAIN_TAINT for t in taints
            )
    for obj in services:
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        key = f"{namespace}/{name}"
        kind = spec.get("type") or "ClusterIP"
        if kind == "ExternalName" or not name:
            continue
        local = spec.get("externalTrafficPolicy") == "Local" and kind in (
            "NodePort",
            "LoadBalancer",
        )
        ready_here: set[str] = set()
        for port in spec.get("ports") or []:
            protocol = port.get("protocol") or "TCP"
            endpoints = _slice_endpoints(slices.get(key, []), port.get("name") or "", protocol)
            ready_here |= {e.address for e in endpoints if e.ready and e.node == node_name}
            cluster_ip = spec.get("clusterIP") or ""
            cluster.ports.append(
                ServicePort(
                    namespace,
                    name,
                    port.get("name") or "",
                    protocol.lower(),
                    int(port.get("port") or 0),
                    int(port.get("nodePort") or 0) if kind in ("NodePort", "LoadBalancer") else 0,
                    cluster_ip if cluster_ip not in ("", "None") else "",
                    local,
                    endpoints,
                )
            )
        if kind == "LoadBalancer" and local and spec.get("healthCheckNodePort"):
            cluster.health_check_ports[key] = int(spec["healthCheckNodePort"])
            cluster.local_ready[key] = len(ready_here)
    cluster.ports.sort(key=lambda p: p.id)
    return cluster


def usable(endpoints: tuple[Endpoint, ...] | list[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when none is ready, the serving-and-terminating ones."""
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]


# --- the nftables table ----------------------------------------------------------------------


def chain_name(prefix: str, base: str) -> str:
    """kube-proxy's naming: the first 8 base32 characters of the name's sha256, then the name."""
    digest = base64.b32encode(hashlib.sha256(base.encode()).digest()).decode()
    return f"{prefix}{digest[:8]}-{base}"


def _pick(chains: list[str]) -> str:
    choices = ", ".join(f"{i} : goto {c}" for i, c in enumerate(chains))
    return f"numgen random mod {len(chains)} vmap {{ {choices} }}"


def ruleset(cluster: Cluster) -> str:
    """The whole table as one `nft -f` file (kube-proxy's layout, this stand-in's text)."""
    local_dst = "fib daddr type local ip daddr != 127.0.0.0/8"
    mark = f"0x{MASQUERADE_BIT:08x}"
    chains: dict[str, list[str]] = {
        "filter-input": [
            "type filter hook input priority -110; policy accept;",
            "ct state new jump nodeport-endpoints-check",
            "ct state new jump service-endpoints-check",
        ],
        "filter-forward": [
            "type filter hook forward priority -110; policy accept;",
            "ct state new jump service-endpoints-check",
        ],
        "filter-output": [
            "type filter hook output priority -110; policy accept;",
            "ct state new jump service-endpoints-check",
        ],
        "nat-prerouting": [
            "type nat hook prerouting priority -100; policy accept;",
            "jump services",
        ],
        "nat-output": ["type nat hook output priority -100; policy accept;", "jump services"],
        "nat-postrouting": [
            "type nat hook postrouting priority 100; policy accept;",
            "jump masquerading",
        ],
        "masquerading": [
            f"meta mark & {mark} == 0x00000000 return",
            f"meta mark set meta mark ^ {mark}",
            "masquerade fully-random",
        ],
        "mark-for-masquerade": [f"meta mark set meta mark | {mark}"],
        "reject-chain": ["reject"],
        "services": [
            "ip daddr . meta l4proto . th dport vmap @service-ips",
            f"{local_dst} meta l4proto . th dport vmap @service-nodeports",
        ],
        "service-endpoints-check": [
            "ip daddr . meta l4proto . th dport vmap @no-endpoint-services"
        ],
        "nodeport-endpoints-check": [
            f"{local_dst} meta l4proto . th dport vmap @no-endpoint-nodeports"
        ],
    }
    maps: dict[str, list[str]] = {
        "service-ips": [],
        "service-nodeports": [],
        "no-endpoint-services": [],
        "no-endpoint-nodeports": [],
    }
    for port in cluster.ports:
        cluster_endpoints = usable(port.endpoints)
        local_endpoints = usable([e for e in port.endpoints if e.node == cluster.node])
        cluster_chain = chain_name("service-", port.id)
        local_chain = chain_name("local-", port.id)
        external_chain = chain_name("external-", port.id)
        reachable = set(cluster_endpoints) | (set(local_endpoints) if port.local else set())
        for endpoint in sorted(reachable, key=lambda e: (e.address, e.port)):
            chains[_endpoint_chain(port, endpoint)] = [
                f"ip saddr {endpoint.address} jump mark-for-masquerade",  # hairpin
                f"meta l4proto {port.protocol} dnat to {endpoint.address}:{endpoint.port}",
            ]
        if cluster_endpoints:
            chains[cluster_chain] = [_pick([_endpoint_chain(port, e) for e in cluster_endpoints])]
        if port.local and local_endpoints:
            chains[local_chain] = [_pick([_endpoint_chain(port, e) for e in local_endpoints])]
        service = f"{port.protocol} . {port.port}"
        if port.cluster_ip:
            target = f"goto {cluster_chain}" if cluster_endpoints else "goto reject-chain"
            which = "service-ips" if cluster_endpoints else "no-endpoint-services"
            maps[which].append(f"{port.cluster_ip} . {service} : {target}")
        if not port.node_port:
            continue
        node_port = f"{port.protocol} . {port.node_port}"
        if not cluster_endpoints:
            maps["no-endpoint-nodeports"].append(f"{node_port} : goto reject-chain")
            continue
        maps["service-nodeports"].append(f"{node_port} : goto {external_chain}")
        if not port.local:
            chains[external_chain] = ["jump mark-for-masquerade", f"goto {cluster_chain}"]
            continue
        # the node itself reaching its nodePort is sent anywhere (and masqueraded)
        chains[external_chain] = [
            'fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"',
            f'fib saddr type local goto {cluster_chain} comment "short-circuit local traffic"',
        ]
        if local_endpoints:
            chains[external_chain].append(f"goto {local_chain}")
        else:
            maps["no-endpoint-nodeports"].append(f"{node_port} : drop")
    types = {
        "service-ips": "ipv4_addr . inet_proto . inet_service : verdict",
        "no-endpoint-services": "ipv4_addr . inet_proto . inet_service : verdict",
        "service-nodeports": "inet_proto . inet_service : verdict",
        "no-endpoint-nodeports": "inet_proto . inet_service : verdict",
    }
    out = [f"add table {TABLE}", f"delete table {TABLE}", f"table {TABLE} {{"]
    out.append('\tcomment "rules for kube-proxy"')
    for name, elements in maps.items():
        out.append(f"\tmap {name} {{\n\t\ttype {types[name]}")
        if elements:
            out.append("\t\telements = { " + ", ".join(elements) + " }")
        out.append("\t}")
    for name, rules in chains.items():
        out.append(f"\tchain {name} {{")
        out += [f"\t\t{rule}" for rule in rules]
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def _endpoint_chain(port: ServicePort, endpoint: Endpoint) -> str:
    return chain_name("endpoint-", f"{port.id}__{endpoint.address}/{endpoint.port}")


def run_nft(script: str) -> None:
    proc = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"nft exited {proc.returncode}")


def table_present() -> bool:
    return (
        subprocess.run(["nft", "list", "table", *TABLE.split()], capture_output=True).returncode
        == 0
    )


# --- HTTP as Go's net/http writes it ---------------------------------------------------------

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}


def go_time(wall_ns: int) -> str:
    """time.Time's String() with its monotonic reading, as kube-proxy's %q prints it."""
    seconds, nanos = divmod(wall_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    if nanos:
        text += f".{nanos:09d}".rstrip("0")
    return f"{text} +0000 UTC m=+{time.monotonic() - STARTED_MONOTONIC:.9f}"


def http_response(
    status: int, headers: dict[str, str], body: bytes, close: bool, head: bool
) -> bytes:
    """Go writes the handler's headers sorted by name, then Date, Content-Length, Connection."""
    lines = [f"HTTP/1.1 {status} {REASONS[status]}"]
    lines += [f"{name}: {headers[name]}" for name in sorted(headers)]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def health_check_body(namespace: str, name: str, count: int, healthy: bool) -> bytes:
    """kube-proxy's hcnp body: tab-indented JSON, no trailing newline."""
    text = (
        "{\n"
        f'\t"service": {{\n\t\t"namespace": {json.dumps(namespace)},\n'
        f'\t\t"name": {json.dumps(name)}\n\t}},\n'
        f'\t"localEndpoints": {count},\n'
        f'\t"serviceProxyHealthy": {"true" if healthy else "false"}\n'
        "}"
    )
    return text.encode()


class KubeProxy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cluster = Cluster()
        self.applied = ""
        self.last_synced_ns = time.time_ns()
        self.pending_since: float | None = None  # monotonic: a change not yet in the kernel
        self.sync_count = 0
        self.loop = asyncio.new_event_loop()
        self.hcnp_servers: dict[int, tuple[str, asyncio.base_events.Server]] = {}
        self.stopping = threading.Event()

    # health as kube-proxy defines it: unhealthy when a change waits longer than 2 sync periods
    def healthy(self) -> bool:
        waited = time.monotonic() - self.pending_since if self.pending_since else 0.0
        return waited < 2 * self.args.sync_period

    # --- HTTP ---

    async def serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: Any
    ) -> None:
        with contextlib.suppress(
            ConnectionError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError
        ):
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    writer.write(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                        b"Connection: close\r\n\r\n400 Bad Request"
                    )
                    break
                method, path, version = parts
                fields = {}
                for line in lines[1:]:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if int(fields.get("content-length") or 0):
                    await reader.readexactly(int(fields["content-length"]))
                status, headers, body = answer(path.split("?", 1)[0])
                close = version == "HTTP/1.0" or fields.get("connection", "").lower() == "close"
                writer.write(http_response(status, headers, body, close, method == "HEAD"))
                await writer.drain()
                if close:
                    break
        writer.close()

    def answer_health_check(self, key: str) -> Any:
        def answer(_path: str) -> tuple[int, dict[str, str], bytes]:
            count = self.cluster.local_ready.get(key, 0)
            healthy = self.healthy()
            namespace, _, name = key.partition("/")
            headers = {
                "Content-Type": "application/json",
                "X-Content-Type-Options": "nosniff",
                "X-Load-Balancing-Endpoint-Weight": str(count),
            }
            status = 200 if count and healthy else 503
            return status, headers, health_check_body(namespace, name, count, healthy)

        return answer

    def answer_proxy_health(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path not in ("/healthz", "/livez"):
            return 404, _not_found_headers(), b"404 page not found\n"
        healthy = self.healthy()
        ok = healthy and (path == "/livez" or self.cluster.node_eligible)
        now = time.time_ns()
        last = go_time(now if ok else self.last_synced_ns)
        body = f'{{"lastUpdated": {json.dumps(last)},"currentTime": {json.dumps(go_time(now))}'
        if path == "/healthz":
            body += f', "nodeEligible": {"true" if self.cluster.node_eligible else "false"}'
        headers = {"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}
        return (200 if ok else 503), headers, (body + "}").encode()

    def answer_metrics(self, path: str) -> tuple[int, dict[str, str], bytes]:
        if path != "/metrics":
            return 404, _not_found_headers(), b"404 page not found\n"
        text = (
            "# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds The last time proxy "
            "rules were successfully synced\n"
            "# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge\n"
            f"kubeproxy_sync_proxy_rules_last_timestamp_seconds {self.last_synced_ns / 1e9}\n"
            "# HELP kubeproxy_sync_proxy_rules_total Syncs done by this stand-in\n"
            "# TYPE kubeproxy_sync_proxy_rules_total counter\n"
            f"kubeproxy_sync_proxy_rules_total {self.sync_count}\n"
        )
        return 200, {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, text.encode()

    async def listen(self, address: tuple[str, int], answer: Any) -> asyncio.base_events.Server:
        return await asyncio.start_server(
            lambda r, w: self.serve(r, w, answer), address[0], address[1], reuse_address=True
        )

    async def reconcile_health_checks(self) -> None:
        wanted = {port: key for key, port in self.cluster.health_check_ports.items()}
        for port, (key, server) in list(self.hcnp_servers.items()):
            if wanted.get(port) != key:
                server.close()
                del self.hcnp_servers[port]
        for port, key in wanted.items():
            if port in self.hcnp_servers:
                continue
            try:
                server = await self.listen(("0.0.0.0", port), self.answer_health_check(key))
            except OSError as exc:
                log.error("cannot listen on healthCheckNodePort %d of %s: %s", port, key, exc)
                continue
            self.hcnp_servers[port] = (key, server)

    # --- sync ---

    def sync(self, cluster: Cluster) -> None:
        script = ruleset(cluster)
        if script != self.applied or not table_present():
            if self.pending_since is None:
                self.pending_since = time.monotonic()
            run_nft(script)
            self.applied = script
            log.info("synced %d service ports", len(cluster.ports))
        self.sync_count += 1
        self.pending_since = None
        self.last_synced_ns = time.time_ns()

    def watch(self) -> None:
        """Poll the store (a cheap stat per file); sync on change and every sync period."""
        seen: tuple[Any, ...] | None = None
        next_resync = 0.0
        while not self.stopping.is_set():
            try:
                files = sorted(os.scandir(self.args.manifests), key=lambda e: e.name)
                signature = tuple((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in files)
                if signature != seen or time.monotonic() >= next_resync:
                    objects = read_store(self.args.manifests)
                    cluster = build_cluster(objects, self.args.hostname_override)
                    self.sync(cluster)
                    self.cluster = cluster
                    asyncio.run_coroutine_threadsafe(self.reconcile_health_checks(), self.loop)
                    seen, next_resync = signature, time.monotonic() + self.args.sync_period
            except (OSError, RuntimeError) as exc:
                if self.pending_since is None:
                    self.pending_since = time.monotonic()
                log.error("sync failed, retrying: %s", exc)
                self.stopping.wait(1.0)
            self.stopping.wait(POLL_SECONDS)

    def run(self) -> int:
        healthz = self.loop.run_until_complete(
            self.listen(self.args.healthz_bind_address, self.answer_proxy_health)
        )
        metrics = self.loop.run_until_complete(
            self.listen(self.args.metrics_bind_address, self.answer_metrics)
        )
        watcher = threading.Thread(target=self.watch, name="watch", daemon=True)
        watcher.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.loop.stop)
        self.loop.run_forever()
        self.stopping.set()
        healthz.close()
        metrics.close()
        log.info("stopped; rules left in place")  # as kube-proxy: a restart must not cut traffic
        return 0


def _not_found_headers() -> dict[str, str]:
    return {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "0.0.0.0", int(port)


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kube-proxy",
        description="STAND-IN for kube-proxy (nftables mode) on nodeport-lb lab nodes: "
        "table ip kube-proxy, healthCheckNodePorts, /healthz. Not the real binary.",
    )
    parser.add_argument("--hostname-override", required=True, help="this node's name")
    parser.add_argument("--manifests", type=Path, required=True, help="the lab's manifest store")
    parser.add_argument("--proxy-mode", choices=["nftables"], default="nftables")
    parser.add_argument("--healthz-bind-address", type=_address, required=True, help="ADDR:PORT")
    parser.add_argument("--metrics-bind-address", type=_address, required=True, help="ADDR:PORT")
    parser.add_argument("--sync-period", type=float, default=30.0, help="seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = argument_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    return KubeProxy(args).run()


if __name__ == "__main__":
    sys.exit(main())
