"""EndpointSlices computed from Services and lab pods, and kept in a real store directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nodeport_lb.lab.endpoints import (
    MANAGED_BY_LABEL,
    SERVICE_NAME_LABEL,
    desired_slices,
    services_of_pod,
    sync_endpoint_slices,
)
from nodeport_lb.lab.state import LabPod, PodPort
from nodeport_lb.store import ManifestStore


def make_pod(
    name: str,
    node: str,
    address: str,
    phase: str = "running",
    port: int = 31000,
    labels: dict[str, str] | None = None,
) -> LabPod:
    return LabPod(
        name=name,
        node=node,
        address=address,
        labels=labels or {"app": "python"},
        ports=[PodPort("http", port, "TCP"), PodPort("echo-udp", 7, "UDP")],
        netns=f"nplb-pod-{name}",
        uid=f"uid-{name}",
        phase=phase,
    )


def make_service(
    name: str = "python-lb", target: Any = 31000, selector: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "uid": "svc-uid"},
        "spec": {
            "type": "LoadBalancer",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "python"} if selector is None else selector,
            "ports": [{"name": "http", "port": 80, "targetPort": target, "protocol": "TCP"}],
        },
    }


def test_selected_pods_become_endpoints_with_node_and_target_ref() -> None:
    pods = [
        make_pod("python-a", "node2", "10.213.130.2"),
        make_pod("other", "node1", "10.213.129.2", labels={"app": "other"}),
    ]
    (slice_,) = desired_slices([make_service()], pods)
    assert slice_["apiVersion"] == "discovery.k8s.io/v1"
    assert slice_["kind"] == "EndpointSlice"
    assert slice_["addressType"] == "IPv4"
    assert slice_["metadata"]["name"].startswith("python-lb-")
    assert slice_["metadata"]["labels"][SERVICE_NAME_LABEL] == "python-lb"
    assert slice_["ports"] == [{"name": "http", "port": 31000, "protocol": "TCP"}]
    assert slice_["endpoints"] == [
        {
            "addresses": ["10.213.130.2"],
            "conditions": {"ready": True, "serving": True, "terminating": False},
            "nodeName": "node2",
            "targetRef": {
                "kind": "Pod",
                "namespace": "default",
                "name": "python-a",
                "uid": "uid-python-a",
            },
        }
    ]


def test_terminating_and_failed_conditions() -> None:
    pods = [
        make_pod("t", "node1", "10.213.129.2", "terminating"),
        make_pod("f", "node1", "10.213.129.3", "failed"),
    ]
    conditions = {
        e["targetRef"]["name"]: e["conditions"]
        for e in desired_slices([make_service()], pods)[0]["endpoints"]
    }
    assert conditions["t"] == {"ready": False, "serving": True, "terminating": True}
    assert conditions["f"] == {"ready": False, "serving": False, "terminating": False}


def test_named_target_port_resolves_per_pod_and_splits_slices() -> None:
    pods = [
        make_pod("a", "node1", "10.213.129.2", port=31000),
        make_pod("b", "node2", "10.213.130.2", port=8080),
    ]
    slices = desired_slices([make_service(target="http")], pods)
    by_port = {s["ports"][0]["port"]: s for s in slices}
    assert set(by_port) == {31000, 8080}
    assert by_port[8080]["endpoints"][0]["targetRef"]["name"] == "b"
    assert len({s["metadata"]["name"] for s in slices}) == 2


def test_no_selector_no_slice_and_no_pods_one_empty_slice() -> None:
    assert desired_slices([make_service(selector={})], [make_pod("a", "n", "10.0.0.1")]) == []
    (empty,) = desired_slices([make_service()], [])
    assert empty["endpoints"] == [] and empty["ports"] == []


def test_services_of_pod() -> None:
    services = [
        make_service("b-svc"),
        make_service("a-svc"),
        make_service("c", selector={"app": "x"}),
    ]
    assert services_of_pod(services, make_pod("p", "n", "10.0.0.1")) == ["a-svc", "b-svc"]


def test_sync_writes_updates_and_removes_only_its_own_slices(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write(make_service())
    foreign = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "hand-made",
            "namespace": "default",
            "labels": {SERVICE_NAME_LABEL: "python-lb"},
        },
        "addressType": "IPv4",
        "endpoints": [],
        "ports": [],
    }
    store.write(foreign)
    pod = make_pod("python-a", "node2", "10.213.130.2")

    assert len(sync_endpoint_slices(store, [pod])) == 1
    assert sync_endpoint_slices(store, [pod]) == []  # unchanged: not rewritten

    pod.phase = "terminating"
    sync_endpoint_slices(store, [pod])
    ours = [
        s
        for s in store.load().of_kind("EndpointSlice")
        if s["metadata"]["labels"].get(MANAGED_BY_LABEL)
    ]
    assert ours[0]["endpoints"][0]["conditions"]["terminating"] is True

    store.delete("Service", "default", "python-lb")
    sync_endpoint_slices(store, [pod])
    names = [s["metadata"]["name"] for s in store.load().of_kind("EndpointSlice")]
    assert names == ["hand-made"]
