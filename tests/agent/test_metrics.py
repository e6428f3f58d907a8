"""The agent's metrics as a scraper sees them: kube-proxy's names and buckets where they mean
the same thing, exposed by prometheus-client over the agent's real metrics listener."""

import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from nodeport_lb.agent.endpoints import LAST_CHANGE_TRIGGER_TIME, change_trigger_time
from nodeport_lb.agent.health import HealthServers, ProxyHealth
from nodeport_lb.agent.metrics import AgentMetrics
from tests.support.netlib import wait_for


def families(metrics: AgentMetrics) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(metrics.render().decode())}


def bucket_bounds(metrics: AgentMetrics, name: str) -> list[str]:
    family = families(metrics)[name]
    return [s.labels["le"] for s in family.samples if s.name == name + "_bucket"]


def test_sync_histograms_have_kube_proxys_names_and_buckets() -> None:
    metrics = AgentMetrics()
    metrics.observe_sync(0.003, "full")
    metrics.observe_sync(0.0005, "partial")
    value = metrics.registry.get_sample_value
    assert value("kubeproxy_sync_proxy_rules_duration_seconds_count") == 2
    assert value("kubeproxy_sync_full_proxy_rules_duration_seconds_count") == 1
    assert value("kubeproxy_sync_partial_proxy_rules_duration_seconds_count") == 1
    # 1 ms doubling 15 times, as kube-proxy's
    expected = [str(0.001 * 2**i) for i in range(15)] + ["+Inf"]
    for name in (
        "kubeproxy_sync_proxy_rules_duration_seconds",
        "kubeproxy_sync_full_proxy_rules_duration_seconds",
        "kubeproxy_sync_partial_proxy_rules_duration_seconds",
    ):
        assert [float(b) for b in bucket_bounds(metrics, name)] == [float(b) for b in expected]
    full_le_4ms = value("kubeproxy_sync_full_proxy_rules_duration_seconds_bucket", {"le": "0.004"})
    full_le_2ms = value("kubeproxy_sync_full_proxy_rules_duration_seconds_bucket", {"le": "0.002"})
    assert (full_le_2ms, full_le_4ms) == (0, 1)


def test_network_programming_buckets_are_kube_proxys() -> None:
    bounds = [
        float(b)
        for b in bucket_bounds(AgentMetrics(), "kubeproxy_network_programming_duration_seconds")
    ]
    assert bounds[:3] == [0.25, 0.5, 1.0]
    assert 59.0 in bounds and 61.0 not in bounds and 65.0 in bounds and 150.0 in bounds
    assert bounds[-2:] == [300.0, float("inf")]
    assert len(bounds) == 2 + 59 + 12 + 7 + 1


def test_the_rest_is_named_nodeport_lb_and_no_created_series() -> None:
    metrics = AgentMetrics()
    metrics.store_errors.inc()
    metrics.invalid_objects.labels("Service").inc()
    text = metrics.render().decode()
    assert "nodeport_lb_store_errors_total 1.0" in text
    assert 'nodeport_lb_invalid_objects_total{kind="Service"} 1.0' in text
    assert "_created" not in text
    names = set(families(metrics))
    ours = {n for n in names if not n.startswith(("process_", "python_"))}
    assert all(n.startswith(("kubeproxy_", "nodeport_lb_")) for n in ours), ours
    assert "process_cpu_seconds" in names  # the process collector, as kube-proxy has


def test_change_trigger_time_reads_the_endpointslice_annotation_only_when_sound() -> None:
    def slice_with(value: object, kind: str = "EndpointSlice") -> dict:
        return {"kind": kind, "metadata": {"annotations": {LAST_CHANGE_TRIGGER_TIME: value}}}

    assert change_trigger_time(slice_with("2024-01-01T00:00:00Z")) == 1704067200.0
    assert change_trigger_time(slice_with("2024-01-01T00:00:00.250000Z")) == 1704067200.25
    assert change_trigger_time(slice_with("2024-01-01T00:00:00")) is None  # no zone
    assert change_trigger_time(slice_with("yesterday")) is None
    assert change_trigger_time(slice_with(12)) is None
    assert change_trigger_time(slice_with("2024-01-01T00:00:00Z", kind="Service")) is None
    assert change_trigger_time({"kind": "EndpointSlice", "metadata": {"annotations": []}}) is None
    assert change_trigger_time({"kind": "EndpointSlice"}) is None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return data


def test_healthz_and_livez_answers_are_counted_as_kube_proxy_counts_them() -> None:
    metrics = AgentMetrics()
    drained = ProxyHealth(healthy=True, last_updated=time.time(), node_eligible=False)
    servers = HealthServers(metrics, lambda: drained)
    healthz, metrics_port = _free_port(), _free_port()
    servers.start(("127.0.0.1", healthz), ("127.0.0.1", metrics_port), None)
    try:
        wait_for(lambda: _get(healthz, "/livez"))
        _get(healthz, "/healthz")
        _get(healthz, "/nothing-here")
        scrape = _get(metrics_port, "/metrics")
    finally:
        servers.stop()
    head, _, body = scrape.partition(b"\r\n\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
    }
    assert scraped[("kubeproxy_proxy_livez_total", (("code", "200"),))] >= 1
    assert scraped[("kubeproxy_proxy_healthz_total", (("code", "503"),))] == 1
    assert not any(
        name == "kubeproxy_proxy_healthz_total" and labels == (("code", "404"),)
        for name, labels in scraped
    )
