"""The agent's Prometheus metrics (prometheus-client), one registry per agent.

Where a metric means what one of kube-proxy's means, it carries kube-proxy's name, help and
buckets, so dashboards and alerts written for kube-proxy read the agent unchanged; the rest is
named ``nodeport_lb_*``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

# kube-proxy exports no *_created series; dashboards expect none.
disable_created_metrics()

PREFIX = "nodeport_lb_"
KUBE_PROXY_PREFIX = "kubeproxy_"

# The classic text format: every Prometheus version scrapes it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# kube-proxy's sync buckets: 1 ms doubling 15 times, up to 16.384 s.
SYNC_BUCKETS = tuple(0.001 * 2**i for i in range(15))
# kube-proxy's network programming buckets: 0.25 s, 0.5 s, then every second to a minute,
# every 5 s to two minutes, every 30 s to five minutes.
NETWORK_PROGRAMMING_BUCKETS = (
    0.25,
    0.5,
    *range(1, 60),
    *range(60, 120, 5),
    *range(120, 301, 30),
)


class AgentMetrics:
    """Every metric the agent exports, in one place so names stay consistent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # kube-proxy exports the process's CPU, memory and file descriptors too.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

        def kube_proxy(kind, name: str, help_text: str, **kwargs):
            return kind(KUBE_PROXY_PREFIX + name, help_text, registry=self.registry, **kwargs)

        def own(kind, name: str, help_text: str, **kwargs):
            return kind(PREFIX + name, help_text, registry=self.registry, **kwargs)

        # --- kube-proxy's names -----------------------------------------------------------
        self.sync_duration = kube_proxy(
            Histogram,
            "sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            buckets=SYNC_BUCKETS,
        )
        self.full_sync_duration = kube_proxy(
            Histogram,
            "sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs",
            buckets=SYNC_BUCKETS,
        )
        self.partial_sync_duration = kube_proxy(
            Histogram,
            "sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs",
            buckets=SYNC_BUCKETS,
        )
        self.last_sync_timestamp = kube_proxy(
            Gauge,
            "sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
        )
        self.last_queued_timestamp = kube_proxy(
            Gauge,
            "sync_proxy_rules_last_queued_timestamp_seconds",
            "The last time a sync of proxy rules was queued",
        )
        self.network_programming_duration = kube_proxy(
            Histogram,
            "network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            buckets=NETWORK_PROGRAMMING_BUCKETS,
        )
        self.sync_errors = kube_proxy(
            Counter,
            "sync_proxy_rules_nftables_sync_failures",
            "Cumulative proxy nftables sync failures",
        )
        self.healthz_responses = kube_proxy(
            Counter, "proxy_healthz", "Cumulative proxy healthz HTTP status", labelnames=["code"]
        )
        self.livez_responses = kube_proxy(
            Counter, "proxy_livez", "Cumulative proxy livez HTTP status", labelnames=["code"]
        )

        # --- the agent's own ----------------------------------------------------------------
        self.last_full_sync_duration = own(
            Gauge, "last_full_sync_duration_seconds", "Duration of the last full (table) sync."
        )
        self.services_programmed = own(Gauge, "services_programmed", "Services with rules.")
        self.rules_programmed = own(
            Gauge, "rules_programmed", "nftables rules in the agent's table."
        )
        self.endpoints_programmed = own(
            Gauge, "endpoints_programmed", "Endpoints that rules DNAT to (this node's view)."
        )
        self.health_responses = own(
            Counter,
            "health_responses",
            "Answers of the healthCheckNodePort servers and the HAProxy agent-check responder.",
            labelnames=["server", "code"],
        )
        self.store_errors = own(
            Counter, "store_errors", "Store files that could not be used (parse errors)."
        )
        self.invalid_objects = own(
            Counter,
            "invalid_objects",
            "Objects ignored because they do not validate.",
            labelnames=["kind"],
        )
        self.watch_errors = own(
            Counter, "watch_errors", "Kubernetes API list/watch failures.", labelnames=["resource"]
        )
        self.healthy = own(
            Gauge, "healthy", "1 when no queued change is older than 2 sync periods."
        )
        self.source_healthy = own(
            Gauge,
            "source_healthy",
            "1 when the last listing of the source (store or API) succeeded completely; while "
            "0 the agent keeps its last good state.",
        )
        self.source_errors = own(
            Counter,
            "source_errors",
            "Listings of the source that failed (store directory or a file unreadable).",
        )
        self.thread_failures = own(
            Counter,
            "thread_failures",
            "Unexpected errors a worker thread survived.",
            labelnames=["thread"],
        )
        self.services_set_aside = own(
            Gauge,
            "services_set_aside",
            "Services (or their contested ports) left out of the table, by reason.",
            labelnames=["reason"],
        )

    def run_step(
        self, thread: str, step: Callable[[], object], log: logging.Logger, message: str
    ) -> bool:
        """One step of a worker thread that must outlive any error (a dead thread would freeze
        what it keeps up): True when it returned; False when it raised, the error logged with
        its traceback and counted in thread_failures."""
        try:
            step()
        except Exception:
            self.thread_failures.labels(thread).inc()
            log.exception(message)
            return False
        return True

    def observe_sync(self, seconds: float, mode: str) -> None:
        """One successful sync: the overall histogram and the one of its kind (full|partial)."""
        self.sync_duration.observe(seconds)
        (self.full_sync_duration if mode == "full" else self.partial_sync_duration).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
