"""Node-port allocation in the manifest store behaves like the API server's allocator."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from nodeport_lb.model import NodePortRange
from nodeport_lb.services import InvalidService, prepare_service
from nodeport_lb.services.store_backend import StoreBackend

RANGE = NodePortRange()


def options(name: str, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": name,
        "type": "LoadBalancer",
        "external_traffic_policy": "Local",
        "selector": {"app": name},
        "ports": [{"name": "http", "port": 80, "target_port": 8080}],
    }
    base.update(extra)
    return base


def apply(store: Path, node_port_range: NodePortRange = RANGE, **opts: Any):
    backend = StoreBackend(str(store), node_port_range)
    return backend.apply(prepare_service(node_port_range, options=options(**opts)))


def test_allocates_node_port_and_hcnp_in_range_and_distinct(tmp_path: Path) -> None:
    after = apply(tmp_path, name="web").after
    node_port = after["spec"]["ports"][0]["nodePort"]
    hcnp = after["spec"]["healthCheckNodePort"]
    assert node_port in RANGE and hcnp in RANGE
    assert node_port != hcnp


def test_allocation_is_stable_across_reruns(tmp_path: Path) -> None:
    first = apply(tmp_path, name="web")
    second = apply(tmp_path, name="web")
    assert first.changed and not second.changed
    assert second.after["spec"] == first.after["spec"]
    assert second.after["metadata"]["uid"] == first.after["metadata"]["uid"]


def test_explicit_port_taken_by_another_service_is_refused(tmp_path: Path) -> None:
    apply(tmp_path, name="one", ports=[{"name": "http", "port": 80, "node_port": 31001}])
    before = sorted(p.read_text() for p in tmp_path.glob("*.yaml"))
    with pytest.raises(InvalidService) as caught:
        apply(tmp_path, name="two", ports=[{"name": "http", "port": 80, "node_port": 31001}])
    assert caught.value.errors == [
        "spec.ports[0].nodePort: Invalid value: 31001: provided port is already allocated"
    ]
    assert sorted(p.read_text() for p in tmp_path.glob("*.yaml")) == before


def test_hcnp_and_node_ports_share_one_pool(tmp_path: Path) -> None:
    first = apply(tmp_path, name="one").after
    taken_hcnp = first["spec"]["healthCheckNodePort"]
    with pytest.raises(InvalidService) as caught:
        apply(tmp_path, name="two", ports=[{"name": "http", "port": 80, "node_port": taken_hcnp}])
    assert "provided port is already allocated" in caught.value.errors[0]
    with pytest.raises(InvalidService):
        apply(tmp_path, name="three", health_check_node_port=first["spec"]["ports"][0]["nodePort"])


def test_allocation_never_collides_in_a_tiny_range(tmp_path: Path) -> None:
    tiny = NodePortRange(30000, 30005)
    ports: set[int] = set()
    for i in range(3):  # 3 Services x (nodePort + hcnp) = the whole range
        spec = apply(tmp_path, tiny, name=f"svc{i}").after["spec"]
        ports |= {spec["ports"][0]["nodePort"], spec["healthCheckNodePort"]}
    assert ports == set(tiny)
    with pytest.raises(InvalidService, match="no free node port left in range 30000-30005"):
        apply(tmp_path, tiny, name="svc3")


def test_hcnp_released_when_service_goes_local_to_cluster(tmp_path: Path) -> None:
    hcnp = apply(tmp_path, name="web").after["spec"]["healthCheckNodePort"]
    result = apply(tmp_path, name="web", external_traffic_policy="Cluster")
    assert result.changed
    assert "healthCheckNodePort" not in result.after["spec"]
    # ... and the port is free for someone else
    other = apply(tmp_path, name="other", ports=[{"name": "http", "port": 80, "node_port": hcnp}])
    assert other.after["spec"]["ports"][0]["nodePort"] == hcnp


def test_tcp_and_udp_on_one_port_number_share_the_node_port(tmp_path: Path) -> None:
    spec = apply(
        tmp_path,
        name="dns",
        ports=[
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"},
        ],
    ).after["spec"]
    assert spec["ports"][0]["nodePort"] == spec["ports"][1]["nodePort"]


def test_no_node_ports_when_allocation_disabled(tmp_path: Path) -> None:
    spec = apply(tmp_path, name="web", allocate_load_balancer_node_ports=False).after["spec"]
    assert "nodePort" not in spec["ports"][0]
    assert spec["healthCheckNodePort"] in RANGE


def test_check_mode_leaves_store_untouched(tmp_path: Path) -> None:
    backend = StoreBackend(str(tmp_path), RANGE)
    result = backend.apply(prepare_service(RANGE, options=options("web")), check_mode=True)
    assert result.changed and result.after["spec"]["healthCheckNodePort"] in RANGE
    assert list(tmp_path.iterdir()) == []  # not even the lock file


def test_check_mode_creates_no_store_directory(tmp_path: Path) -> None:
    store = tmp_path / "not-yet"
    backend = StoreBackend(str(store), RANGE)
    assert backend.apply(prepare_service(RANGE, options=options("web")), check_mode=True).changed
    assert not store.exists()


def test_check_mode_reports_the_ports_the_real_run_allocates(tmp_path: Path) -> None:
    apply(tmp_path, name="other")  # a store that already holds some ports
    backend = StoreBackend(str(tmp_path), RANGE)
    manifest = prepare_service(RANGE, options=options("web"))
    checked = backend.apply(manifest, check_mode=True).after["spec"]
    applied = backend.apply(manifest).after["spec"]
    assert checked["healthCheckNodePort"] == applied["healthCheckNodePort"]
    assert checked["ports"] == applied["ports"]


def test_check_mode_diff_invents_no_identity(tmp_path: Path) -> None:
    backend = StoreBackend(str(tmp_path), RANGE)
    result = backend.apply(prepare_service(RANGE, options=options("web")), check_mode=True)
    assert "uid" not in result.after["metadata"]
    assert "creationTimestamp" not in result.after["metadata"]
    assert "uid:" not in result.diff["after"]
    stored = backend.apply(prepare_service(RANGE, options=options("web"))).after["metadata"]
    again = backend.apply(prepare_service(RANGE, options=options("web")), check_mode=True)
    assert again.after["metadata"]["uid"] == stored["uid"]  # the real one, kept


def test_one_node_port_for_two_port_numbers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidService) as refused:
        apply(
            tmp_path,
            name="web",
            ports=[
                {"name": "a", "port": 80, "node_port": 31000},
                {"name": "b", "port": 81, "node_port": 31000, "protocol": "UDP"},
            ],
        )
    assert refused.value.errors == [
        "spec.ports[1].nodePort: Invalid value: 31000: provided port is already allocated"
    ]


def _apply_in_child(store: str, name: str, queue: multiprocessing.Queue) -> None:
    spec = apply(Path(store), NodePortRange(30000, 30009), name=name).after["spec"]
    queue.put({spec["ports"][0]["nodePort"], spec["healthCheckNodePort"]})


def test_racing_runs_never_share_a_port(tmp_path: Path) -> None:
    """Five processes allocate at once from a 10-port range: the file lock keeps them apart."""
    ctx = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_apply_in_child, args=(str(tmp_path), f"svc{i}", queue))
        for i in range(5)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    allocated = [queue.get(timeout=5) for _ in procs]
    union = set().union(*allocated)
    assert len(union) == 10


def test_delete(tmp_path: Path) -> None:
    apply(tmp_path, name="web")
    backend = StoreBackend(str(tmp_path), RANGE)
    assert backend.delete("default", "web").changed
    assert not backend.delete("default", "web").changed
    assert backend.get("default", "web") is None


def test_a_stored_node_port_that_is_not_an_integer_is_never_kept(tmp_path: Path) -> None:
    """A hand-edited store may hold anything; what is kept is printed into rules, HAProxy
    configs and verify's commands, so only an integer inside the range is worth keeping."""
    apply(tmp_path, name="web")
    stored = tmp_path / "service_default_web.yaml"
    text = stored.read_text()
    hostile = "'31000; touch /tmp/pwned'"
    lines = []
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in ("nodePort", "healthCheckNodePort"):
            line = line.split(":", 1)[0] + ": " + hostile
        lines.append(line)
    stored.write_text("\n".join(lines) + "\n")
    after = apply(tmp_path, name="web").after
    node_port = after["spec"]["ports"][0]["nodePort"]
    hcnp = after["spec"]["healthCheckNodePort"]
    assert isinstance(node_port, int) and node_port in RANGE
    assert isinstance(hcnp, int) and hcnp in RANGE


def test_a_new_port_never_takes_the_hcnp_the_service_holds(tmp_path: Path) -> None:
    first = apply(tmp_path, name="web").after["spec"]
    ports = [
        {"name": "http", "port": 80, "target_port": 8080},
        {"name": "https", "port": 443, "target_port": 8443},
    ]
    second = apply(tmp_path, name="web", ports=ports).after["spec"]
    assert second["healthCheckNodePort"] == first["healthCheckNodePort"]
    assert second["ports"][0]["nodePort"] == first["ports"][0]["nodePort"]
    assert second["ports"][1]["nodePort"] not in (
        first["healthCheckNodePort"],
        first["ports"][0]["nodePort"],
    )


def test_a_definition_sharing_one_dict_twice_is_stored_readable(tmp_path: Path) -> None:
    """A playbook's YAML anchor makes the selector and the labels one object: the store must
    write it out twice, since its readers refuse YAML aliases."""
    app = {"app": "web"}
    definition = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "labels": app},
        "spec": {"type": "NodePort", "selector": app, "ports": [{"port": 80}]},
    }
    backend = StoreBackend(str(tmp_path), RANGE)
    backend.apply(prepare_service(RANGE, definition=definition))
    contents = backend.store.load()
    assert contents.errors == []
    assert backend.get("default", "web")["spec"]["selector"] == {"app": "web"}
