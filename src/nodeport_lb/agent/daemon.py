"""The agent's main loop: take changes, compute rules for what changed, apply, report health.

kube-proxy's shape: change tracking → desired state → one atomic transaction.
The first sync replaces the whole table, and waits for one complete listing of the source
(like kube-proxy waiting for its informers): a table built from part of the objects would
delete the others' rules, so an agent started without its source keeps the table it finds.
A restart from a snapshot (--snapshot-file) over the very table the snapshot describes (its
generation number says so) changes only what changed since instead (agent/snapshot.py).
Later syncs touch only the Services that changed; every ``full_sync_period`` the table is
replaced again, and every sync period the agent checks that its table is still there (someone
may have flushed the ruleset) and restores it if not.

In companion mode another dataplane (kube-proxy) owns the nodePorts: the agent keeps the same
view of the cluster but has no table, no healthCheckNodePort listeners and no proxy /healthz;
what it serves from that view (agent-check weights, drain, metrics) is the same in both modes.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from nodeport_lb.agent.dataplane import (
    Dataplane,
    NftError,
    delete_leftover_table,
    table_exists,
    table_generation,
)
from nodeport_lb.agent.endpoints import SERVICE_NAME_LABEL, change_trigger_time
from nodeport_lb.agent.health import HealthServers, ProxyHealth, ServiceHealth
from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.agent.preflight import STANDALONE
from nodeport_lb.agent.return_path import LoadBalancerPeer, ReturnPath
from nodeport_lb.agent.rules import RuleConfig
from nodeport_lb.agent.snapshot import SnapshotKey, read_snapshot, snapshot_key, write_snapshot
from nodeport_lb.agent.sources import Batch, ChangeQueue, KubeSource, StoreSource
from nodeport_lb.agent.state import ClusterState
from nodeport_lb.defaults import DEFAULT_HEALTHZ_ADDRESS, DEFAULT_METRICS_ADDRESS
from nodeport_lb.model import NodePortRange
from nodeport_lb.store import IncrementalStoreReader, ManifestStore, atomic_write_text

log = logging.getLogger(__name__)

MAX_TRACKED_CHANGES = 10_000
# a snapshot is written once the agent has been idle this long, at most once per period
SNAPSHOT_IDLE = 2.0
SNAPSHOT_PERIOD = 30.0


@dataclass(frozen=True)
class AgentConfig:
    node_name: str
    manifests: Path | None
    kubeconfig: str | None
    nodeport_cidrs: tuple[str, ...] = ()
    mode: str = STANDALONE
    healthz_address: tuple[str, int] | None = DEFAULT_HEALTHZ_ADDRESS
    metrics_address: tuple[str, int] | None = DEFAULT_METRICS_ADDRESS
    agent_check_address: tuple[str, int] | None = None
    node_port_range: NodePortRange = field(default_factory=NodePortRange)
    sync_period: float = 30.0
    full_sync_period: float = 3600.0
    nft: str = "nft"
    conntrack: str = "conntrack"
    # load balancers whose transparent connections' replies go back through them
    load_balancers: tuple[LoadBalancerPeer, ...] = ()
    # the hcnp answers of the last sync, so a restart without its source answers them again
    state_file: Path | None = None
    # the state of the last sync, so a restart reads only the store files changed since
    snapshot_file: Path | None = None

    @property
    def programs_nodeports(self) -> bool:
        """Standalone: the agent is the node's NodePort dataplane (rules and hcnp servers)."""
        return self.mode == STANDALONE


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.metrics = AgentMetrics()
        self.queue = ChangeQueue()
        rule_config = RuleConfig(config.node_name, config.nodeport_cidrs)
        self._rule_config = rule_config
        self.state = ClusterState(rule_config, config.node_port_range)
        # None in companion mode: kube-proxy's rules serve the nodePorts
        self.dataplane = (
            Dataplane(rule_config, config.nft, config.conntrack)
            if config.programs_nodeports
            else None
        )
        self.health = HealthServers(self.metrics, self.proxy_health, config.nodeport_cidrs)
        self.return_path = (
            ReturnPath(config.load_balancers, self.metrics, config.nft, period=config.sync_period)
            if config.load_balancers
            else None
        )
        self.source: StoreSource | KubeSource
        if config.manifests is not None:
            self.source = StoreSource(
                ManifestStore(config.manifests), self.queue, self.metrics, config.sync_period
            )
        else:
            assert config.kubeconfig
            self.source = KubeSource(config.kubeconfig, config.node_name, self.queue, self.metrics)
        self._stop = threading.Event()
        self._last_updated = 0.0  # wall time of the last successful sync
        self._failing_since: float | None = None  # monotonic; a sync is owed since then
        self._table_missing = threading.Event()  # set by the consistency checker
        self._health: dict[str, ServiceHealth] = {}
        self._hcnp_of: dict[str, int] = {}  # Service key -> its healthCheckNodePort
        self._endpoints_of: dict[str, int] = {}  # Service key -> endpoints in its rules
        self._endpoints_total = 0
        self._gauges_updated = 0.0
        # when the changes waiting to reach the kernel happened (EndpointSlices that say);
        # like kube-proxy, changes from before the agent started are not its latency
        self._change_trigger_times: list[float] = []
        self._started_at = time.time()
        self._started = time.monotonic()
        self._restored = False  # serving the last run's hcnp answers until the first sync
        self._saved_health: object = None
        # the hcnp answers are saved by a thread of their own, at most once a second: a
        # change must not wait for a file to be written (nor for every answer to be sorted)
        self._health_lock = threading.Lock()  # _health and _hcnp_of, against that thread
        self._save_wanted = threading.Event()
        # the snapshot: written by a thread of its own from copies taken between syncs
        self._snapshot_key: SnapshotKey | None = None
        self._snapshot_owed = False  # the state changed since the last snapshot
        self._snapshot_at: float | None = None  # monotonic time of the last one
        self._last_change = time.monotonic()
        self._snapshot_writer: threading.Thread | None = None
        # the table holds what the snapshot says (its generation number is the snapshot's):
        # the first sync changes only what changed since, instead of replacing it all
        self._table_verified = False
        self._unsynced: set[str] = set()  # Services changed since the last sync

    # --- health -------------------------------------------------------------------------

    def proxy_health(self) -> ProxyHealth:
        """Unhealthy when a change has waited more than 2 sync periods (kube-proxy's rule)."""
        # before the first sync, the table is owed since the start (unless the last run's
        # table and answers are what is served: then the source is what is late)
        started = self._started if not self._last_updated and not self._restored else None
        owed = [
            t for t in (self.queue.oldest_pending(), self._failing_since, started) if t is not None
        ]
        healthy = not owed or time.monotonic() - min(owed) <= 2 * self.config.sync_period
        return ProxyHealth(healthy, self._last_updated, self.state.node_eligible)

    # --- lifecycle ----------------------------------------------------------------------

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info("starting in %s mode", self.config.mode)
        if self.dataplane is not None:
            _ensure_ip_forwarding()
        elif delete_leftover_table(self.config.nft):
            log.warning(
                "removed the nodeport-lb table a standalone run left: kube-proxy serves here"
            )
        self.health.start(
            self.config.healthz_address,
            self.config.metrics_address,
            self.config.agent_check_address,
        )
        if self.return_path is not None:
            # independent of the NodePort rules and of the source: in place before them
            self.return_path.start()
        self._restore_health()
        with _collector_paused():
            self._restore_snapshot()
            self.source.initial_load(between_parts=self._apply_queued)
        self.source.start()
        if self.dataplane is not None:
            threading.Thread(target=self._check_table, name="table-check", daemon=True).start()
        if self.config.state_file is not None:
            threading.Thread(target=self._keep_health_saved, name="state", daemon=True).start()
        try:
            self._loop()
        finally:
            self.source.stop()
            self.health.stop()
            if self.return_path is not None:
                self.return_path.stop()
            self._save_health()  # what the last sync said, for the next start
            self._save_snapshot(wait=True)
        # the rules stay: a stopped agent must not black-hole the node
        log.info("stopped; nftables rules left in place" if self.dataplane else "stopped")
        return 0

    def stop(self) -> None:
        self._stop.set()  # the loop notices within one queue poll

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stop.set()

    def _check_table(self) -> None:
        """Someone may flush the ruleset under us: notice it within a sync period. A thread of
        its own, because listing a table of 10,000 chains takes ~100 ms a sync must not wait.
        It outlives any error (nft missing for a moment, EMFILE): logged and counted."""
        while not self._stop.wait(self.config.sync_period):
            self.metrics.run_step(
                "table-check",
                self._note_missing_table,
                log,
                "checking the nodeport-lb table failed; trying again next period",
            )

    def _note_missing_table(self) -> None:
        if self._last_updated and not table_exists(self.config.nft):
            self._table_missing.set()

    def _loop(self) -> None:
        next_full = time.monotonic() + self.config.full_sync_period
        first = True
        waiting_logged = False
        while not self._stop.is_set():
            # the first sync does not wait for a batch once the listing is in: the store's
            # was applied as it was read
            batch = self.queue.take(timeout=0 if first and self.source.synced() else 0.2)
            changed: set[str] | None = set()
            if batch is not None:
                changed = self._apply(batch)
            elif self._snapshot_due():
                self._save_snapshot(wait=False)
            if first and not self.source.synced():
                if not waiting_logged:
                    log.warning("no complete listing of the source yet: the table stays as it is")
                    waiting_logged = True
                continue  # what arrives meanwhile is kept in the state for the first sync
            now = time.monotonic()
            if first and self._table_verified:
                changed = set(self._unsynced)
            elif first or now >= next_full:
                changed, next_full = None, now + self.config.full_sync_period
            elif self._table_missing.is_set():
                self._table_missing.clear()
                log.warning("the nodeport-lb table is missing: restoring it")
                changed = None
            owed = first or changed is None or changed or self._failing_since is not None
            if owed and self._sync(changed if self._failing_since is None else None):
                self._publish_health(None if first else changed)
                first = False
                self._update_gauges()
                self._snapshot_owed = True
                self._last_change = time.monotonic()

    def _apply(self, batch: Batch) -> set[str]:
        """A batch into the state; returns the Services it changed."""
        with _collector_paused(len(batch.upserts) + len(batch.deletes) >= BULK):
            result = self.state.apply(batch)
        self._unsynced |= result.dirty
        self._note_queued(batch, result.dirty)
        for kind in result.invalid_kinds:
            self.metrics.invalid_objects.labels(kind).inc()
        if result.node_changed:
            log.info("node %s eligible: %s", self.config.node_name, self.state.node_eligible)
        self.metrics.services_set_aside.labels("nodeport_conflict").set(len(self.state.blocked))
        return result.dirty

    def _apply_queued(self) -> None:
        """What the source queued so far, applied now (between the parts of a first listing:
        the objects of a part are dropped before the next part is read)."""
        batch = self.queue.take(timeout=0)
        if batch is not None:
            self._apply(batch)

    def _sync(self, changed: set[str] | None) -> bool:
        if self.dataplane is None:  # companion: nothing to program, the view is up to date
            self._failing_since = None
            self._last_updated = time.time()
            self.metrics.last_sync_timestamp.set(self._last_updated)
            self._change_trigger_times.clear()  # kube-proxy's programming, not ours to time
            return True
        start = time.perf_counter()
        try:
            mode = self.dataplane.sync(self.state.rules, changed)
        except (NftError, OSError) as exc:
            mode = "full" if changed is None or self.dataplane.need_full_sync else "partial"
            self.metrics.sync_errors.inc()
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            log.error("nft transaction failed (%s sync), previous rules kept: %s", mode, exc)
            self._stop.wait(1.0)  # back off before the full retry
            return False
        elapsed = time.perf_counter() - start
        self.metrics.services_set_aside.labels("nft_refused").set(len(self.dataplane.set_aside))
        self._failing_since = None
        self._unsynced.clear()
        self._last_updated = time.time()
        self.metrics.observe_sync(elapsed, mode)
        self.metrics.last_sync_timestamp.set(self._last_updated)
        for trigger_time in self._change_trigger_times:
            # a clock skewed against the control plane's must not give a negative latency
            self.metrics.network_programming_duration.observe(
                max(0.0, self._last_updated - trigger_time)
            )
        self._change_trigger_times.clear()
        if mode == "full":
            self.metrics.last_full_sync_duration.set(elapsed)
            log.info("full sync of %d Services in %.3fs", len(self.state.rules), elapsed)
        else:
            log.debug("partial sync of %d Services in %.3fs", len(changed or ()), elapsed)
        return True

    # --- snapshot -----------------------------------------------------------------------

    def _restore_snapshot(self) -> None:
        """Before the first listing: start from the last run's snapshot if it is whole and
        made for this code, store and settings; the listing then reads only the files that
        changed since (see nodeport_lb.agent.snapshot)."""
        path = self.config.snapshot_file
        if path is None or not isinstance(self.source, StoreSource):
            return
        self._snapshot_key = snapshot_key(
            self.source.reader.store.path,
            self.config.node_name,
            self.config.node_port_range,
            self.config.nodeport_cidrs,
        )
        content = read_snapshot(path, self._snapshot_key)
        if content is None:
            return
        try:
            self.source.reader.restore(content["reader"])
            self.state.restore(content["state"])
        except Exception as exc:  # written by this code, so unlikely; never fatal
            log.warning("snapshot %s ignored: %r", path, exc)
            self.source.reader = IncrementalStoreReader(self.source.reader.store)
            self.state = ClusterState(self._rule_config, self.config.node_port_range)
            return
        log.info(
            "started from the snapshot of %d Services in %s; store files changed since are "
            "read again",
            len(self.state.services),
            path,
        )
        table = content.get("dataplane")
        if self.dataplane is None or table is None:
            return
        if table_generation(self.config.nft) == table["generation"]:
            self.dataplane.adopt(table)
            self._table_verified = True
            log.info(
                "the table is the one the snapshot describes: the first sync changes only "
                "what changed since"
            )
        else:
            log.info("the table is not the one the snapshot describes: the first sync replaces it")

    def _snapshot_due(self) -> bool:
        now = time.monotonic()
        return (
            self._snapshot_owed
            and now - self._last_change >= SNAPSHOT_IDLE
            and (self._snapshot_at is None or now - self._snapshot_at >= SNAPSHOT_PERIOD)
        )

    def _save_snapshot(self, wait: bool) -> None:
        """Copies of the reader's and the state's tables, taken when every change the reader
        found has reached the state; written by a thread (``wait``: and waited for)."""
        source, key, path = self.source, self._snapshot_key, self.config.snapshot_file
        if not isinstance(source, StoreSource) or key is None or path is None:
            return
        if self._snapshot_writer is not None:
            if not wait and self._snapshot_writer.is_alive():
                return
            self._snapshot_writer.join()
        if not self._snapshot_owed or not self._last_updated or not source.synced():
            return
        with source.lock:
            if self.queue.oldest_pending() is not None:
                return  # the reader is ahead of the state: the next idle moment
            reader = source.reader.export()
        content = {
            "reader": reader,
            "state": self.state.export(),
            "dataplane": self.dataplane.export() if self.dataplane is not None else None,
        }
        self._snapshot_owed = False
        self._snapshot_at = time.monotonic()

        def write() -> None:
            try:
                write_snapshot(path, key, content)
            except Exception:
                self._snapshot_owed = True
                self.metrics.thread_failures.labels("snapshot").inc()
                log.exception("writing the snapshot %s failed", path)

        self._snapshot_writer = threading.Thread(target=write, name="snapshot", daemon=True)
        self._snapshot_writer.start()
        if wait:
            self._snapshot_writer.join()

    def _note_queued(self, batch: Batch, dirty: set[str]) -> None:
        """When the batch was queued, and when each slice change in it that reaches the
        rules happened (a rewrite that changes no endpoint programs nothing)."""
        queued_wall_time = time.time() - (time.monotonic() - batch.queued_at)
        self.metrics.last_queued_timestamp.set(queued_wall_time)
        for key, obj in batch.upserts.items():
            # bounded while syncs fail: the oldest changes are kept, they waited longest
            if len(self._change_trigger_times) >= MAX_TRACKED_CHANGES:
                break
            trigger_time = change_trigger_time(obj)
            if trigger_time is None or trigger_time < self._started_at:
                continue
            labels = obj["metadata"].get("labels")  # a slice with a trigger time has metadata
            service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, dict) else None
            if f"{key.namespace}/{service}" in dirty:
                self._change_trigger_times.append(trigger_time)

    def _update_gauges(self) -> None:
        """Totals over every Service: at 10,000 of them, worth doing at most once a second."""
        now = time.monotonic()
        if now - self._gauges_updated < 1.0:
            return
        self._gauges_updated = now
        self.metrics.services_programmed.set(len(self.state.rules))
        self.metrics.rules_programmed.set(self.dataplane.rule_count() if self.dataplane else 0)
        self.metrics.endpoints_programmed.set(self._endpoints_total)
        self.metrics.healthy.set(1 if self.proxy_health().healthy else 0)

    def _publish_health(self, changed: set[str] | None) -> None:
        """Hand the health servers the new counts. Only changed Services are looked at: at
        10,000 Services a pass over all of them would be most of a change's cost."""
        rules = self.state.rules
        programs = self.config.programs_nodeports
        if changed is None:
            health = {
                key: ServiceHealth(r.namespace, r.name, r.local_ready_endpoints)
                for key, r in rules.items()
            }
            hcnp_of = {
                key: r.health_check_node_port
                for key, r in rules.items()
                if r.health_check_node_port and programs
            }
            self._endpoints_of = {
                key: sum(len(p.usable_addresses) for p in r.ports) for key, r in rules.items()
            }
            self._endpoints_total = sum(self._endpoints_of.values())
            with self._health_lock:
                self._health, self._hcnp_of = health, hcnp_of
            self.health.update_services(health, {port: key for key, port in hcnp_of.items()})
            self._save_wanted.set()
            return
        services: dict[str, ServiceHealth | None] = {}
        ports: dict[int, str | None] = {}
        saved = False  # whether the saved answers change
        with self._health_lock:
            # a port one changed Service gives up may be taken by another in the same batch
            for key in changed:
                old = self._hcnp_of.pop(key, None)
                if old is not None:
                    ports[old] = None
                    saved = True
            for key in changed:
                r = rules.get(key)
                self._endpoints_total -= self._endpoints_of.pop(key, 0)
                if r is None:
                    self._health.pop(key, None)
                    services[key] = None
                    continue
                endpoints = sum(len(p.usable_addresses) for p in r.ports)
                self._endpoints_of[key] = endpoints
                self._endpoints_total += endpoints
                services[key] = self._health[key] = ServiceHealth(
                    r.namespace, r.name, r.local_ready_endpoints
                )
                if r.health_check_node_port and programs:
                    self._hcnp_of[key] = r.health_check_node_port
                    ports[r.health_check_node_port] = key
                    saved = True
        self.health.update_changed(services, ports)
        if saved:
            self._save_wanted.set()

    def _keep_health_saved(self) -> None:
        """Write the hcnp answers when they changed, at most once a second: a crash loses at
        most that second, and a restart that finds no source answers what it found."""
        while not self._stop.is_set():
            if not self._save_wanted.wait(1.0):
                continue
            self._save_wanted.clear()
            self.metrics.run_step(
                "state",
                self._save_health,
                log,
                "saving the health state failed; trying again at the next change",
            )
            self._stop.wait(1.0)

    def _save_health(self) -> None:
        """The hcnp answers, for a restart that finds its table but not its source."""
        if self.config.state_file is None:
            return
        with self._health_lock:
            hcnp_of = dict(self._hcnp_of)
            health = {key: self._health[key] for key in hcnp_of if key in self._health}
        state = {
            "hcnp": {str(port): key for port, key in sorted((p, k) for k, p in hcnp_of.items())},
            "services": {
                key: [h.namespace, h.name, h.local_endpoints] for key, h in sorted(health.items())
            },
        }
        if state == self._saved_health:
            return
        try:
            atomic_write_text(self.config.state_file, json.dumps(state), mode=0o600)
            self._saved_health = state
        except OSError as exc:
            log.warning("cannot save the health state to %s: %s", self.config.state_file, exc)

    def _restore_health(self) -> None:
        """Started without a listing yet, over the table a previous run left: answer the
        hcnp as that run did, so the load balancers keep sending where the pods are."""
        path = self.config.state_file
        if path is None or self.dataplane is None or not table_exists(self.config.nft):
            return
        try:
            state = json.loads(path.read_text())
            hcnp = {int(port): str(key) for port, key in state["hcnp"].items()}
            services = {
                str(key): ServiceHealth(str(ns), str(name), int(count))
                for key, (ns, name, count) in state["services"].items()
            }
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError) as exc:
            log.warning("ignoring the health state in %s: %s", path, exc)
            return
        self._health = services
        self._hcnp_of = {key: port for port, key in hcnp.items()}
        self._restored = True
        self.health.update_services(services, hcnp)
        log.info("serving the last run's hcnp answers (%d) until the first sync", len(hcnp))


# A batch this large (the first listing, a relist) is read with the collector paused.
BULK = 1000


@contextlib.contextmanager
def _collector_paused(pause: bool = True) -> Iterator[None]:
    """Reading thousands of objects makes hundreds of thousands of Python objects that all
    live on: the cycle collector's passes over them while they are made find nothing and
    were half of a start's CPU time. After, they are moved out of its sight (``gc.freeze``),
    so its later passes walk only what changes."""
    if not pause or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _ensure_ip_forwarding() -> None:
    """DNAT to a pod on another host is forwarding: a Kubernetes node has it on (the CNI sets
    it); a bare host may not. Only this network namespace's setting is touched."""
    knob = Path("/proc/sys/net/ipv4/ip_forward")
    try:
        if knob.read_text().strip() != "1":
            knob.write_text("1\n")
            log.info("enabled net.ipv4.ip_forward (needed to forward nodePort traffic to pods)")
    except OSError as exc:
        log.warning("cannot enable net.ipv4.ip_forward: %s", exc)
