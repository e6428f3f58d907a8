"""The nodeport_service / nodeport_service_info modules, run by real ansible-playbook on
localhost against a manifest store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.modules.conftest import store_snapshot


def python_lb(store: Path, **overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "store": {"path": str(store)},
        "name": "python-lb",
        "type": "LoadBalancer",
        "external_traffic_policy": "Local",
        "selector": {"app": "python"},
        "ports": [{"name": "http", "port": 80, "target_port": 31000, "node_port": 31001}],
    }
    args.update(overrides)
    return {"name": "python-lb", "nodeport_service": args, "register": "svc"}


def test_create_returns_allocated_ports(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = playbook([python_lb(store)])
    assert run.returncode == 0, run.output
    svc = run.results["svc"]
    assert svc["changed"] is True
    assert svc["node_ports"] == {"http": 31001}
    assert 30000 <= svc["health_check_node_port"] <= 32767
    assert svc["service"]["spec"]["healthCheckNodePort"] == svc["health_check_node_port"]
    stored = (store / "service_default_python-lb.yaml").read_text()
    assert f"healthCheckNodePort: {svc['health_check_node_port']}" in stored


def test_second_run_changes_nothing(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = playbook([python_lb(store)])
    snapshot = store_snapshot(store)
    second = playbook([python_lb(store)])
    assert second.returncode == 0, second.output
    assert second.results["svc"]["changed"] is False
    assert second.recap("changed") == 0
    assert (
        second.results["svc"]["health_check_node_port"]
        == first.results["svc"]["health_check_node_port"]
    )
    assert store_snapshot(store) == snapshot


def test_check_mode_leaves_store_byte_identical_and_shows_diff(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    playbook([python_lb(store)])
    snapshot = store_snapshot(store)
    run = playbook([python_lb(store, external_traffic_policy="Cluster")], "--check", "--diff")
    assert run.returncode == 0, run.output
    assert run.results["svc"]["changed"] is True
    assert "-  externalTrafficPolicy: Local" in run.output
    assert "+  externalTrafficPolicy: Cluster" in run.output
    assert "-  healthCheckNodePort:" in run.output
    assert store_snapshot(store) == snapshot


def test_check_mode_on_new_service_writes_nothing(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run = playbook([python_lb(store)], "--check", "--diff")
    assert run.returncode == 0, run.output
    assert run.results["svc"]["changed"] is True
    assert not store.exists()  # no directory, no lock file
    assert "uid:" not in run.output and "creationTimestamp" not in run.output


def test_check_mode_reports_the_ports_the_real_run_allocates(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    task = python_lb(store, ports=[{"name": "http", "port": 80, "target_port": 31000}])
    checked = playbook([task], "--check")
    applied = playbook([task])
    assert checked.returncode == 0 and applied.returncode == 0, applied.output
    for fact in ("node_ports", "health_check_node_port"):
        assert checked.results["svc"][fact] == applied.results["svc"][fact]
    assert checked.results["svc"]["to_be_allocated"] == []


def test_invalid_input_fails_with_api_message_and_touches_nothing(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    playbook([python_lb(store)])
    snapshot = store_snapshot(store)
    bad_port = [{"name": "http", "port": 80, "target_port": 31000, "node_port": 29999}]
    run = playbook([python_lb(store, ports=bad_port)])
    assert run.returncode != 0
    assert (
        "spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range. "
        "The range of valid ports is 30000-32767"
    ) in run.output
    assert store_snapshot(store) == snapshot


def test_port_taken_by_another_service_fails(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    playbook([python_lb(store)])
    other = python_lb(store, name="other")
    run = playbook([other])
    assert run.returncode != 0
    assert (
        "spec.ports[0].nodePort: Invalid value: 31001: provided port is already allocated"
        in run.output
    )


def test_definition_and_absent(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    definition = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "test-python"},
        "spec": {
            "type": "NodePort",
            "externalTrafficPolicy": "Local",
            "selector": {"app": "python"},
            "ports": [{"port": 31000, "targetPort": 31000, "nodePort": 31000}],
        },
    }
    task = {
        "nodeport_service": {"store": {"path": str(store)}, "definition": definition},
        "register": "svc",
    }
    run = playbook([task])
    assert run.returncode == 0, run.output
    assert run.results["svc"]["node_ports"] == {"31000": 31000}
    assert run.results["svc"]["health_check_node_port"] is None

    absent = {
        "nodeport_service": {
            "store": {"path": str(store)},
            "name": "test-python",
            "state": "absent",
        },
        "register": "gone",
    }
    run = playbook([absent, {**absent, "register": "again"}])
    assert run.returncode == 0, run.output
    assert run.results["gone"]["changed"] is True
    assert run.results["again"]["changed"] is False
    assert store_snapshot(store) == {}


def test_info_module_returns_the_same_facts(playbook, tmp_path: Path) -> None:
    store = tmp_path / "store"
    info = {"nodeport_service_info": {"store": {"path": str(store)}}, "register": "info"}
    one = {
        "nodeport_service_info": {"store": {"path": str(store)}, "name": "python-lb"},
        "register": "one",
    }
    missing = {
        "nodeport_service_info": {"store": {"path": str(store)}, "name": "nope"},
        "register": "missing",
    }
    run = playbook([python_lb(store), info, one, missing])
    assert run.returncode == 0, run.output
    created = run.results["svc"]
    [listed] = run.results["info"]["services"]
    assert listed["name"] == "python-lb" and listed["namespace"] == "default"
    assert listed["node_ports"] == created["node_ports"]
    assert listed["health_check_node_port"] == created["health_check_node_port"]
    assert run.results["one"]["services"][0]["service"] == created["service"]
    assert run.results["missing"]["services"] == []


def test_module_without_the_package_says_how_to_fix(playbook, tmp_path: Path) -> None:
    task = python_lb(tmp_path / "store")
    task["vars"] = {"ansible_python_interpreter": "/usr/bin/python3"}
    run = playbook([task])
    if run.returncode == 0:  # this machine's system Python happens to have nodeport_lb
        return
    assert "ansible_playbook_python" in run.output


def test_info_module_without_the_package_says_how_to_fix(playbook, tmp_path: Path) -> None:
    task = {
        "name": "info",
        "nodeport_service_info": {"store": {"path": str(tmp_path / "store")}, "doctor": True},
        "register": "info",
        "vars": {"ansible_python_interpreter": "/usr/bin/python3"},
    }
    run = playbook([task])
    if run.returncode == 0:  # this machine's system Python happens to have nodeport_lb
        return
    assert "the nodeport_lb package is not importable" in run.output
    assert "pip install nodeport-lb" in run.output


def test_a_services_role_entry_passed_whole_is_the_same_service(playbook, tmp_path: Path) -> None:
    """``service:`` takes an entry as the role holds it: its Service options checked by the
    same argument spec, its other keys (load_balancer) left out."""
    store = tmp_path / "store"
    first = playbook([python_lb(store)])
    options = dict(python_lb(store)["nodeport_service"])
    entry = {k: options.pop(k) for k in list(options) if k != "store"}
    entry["ports"][0]["port"] = "80"  # converted as the option itself would be
    whole = {"store": options["store"], "service": {**entry, "load_balancer": {"vip": "x"}}}
    run = playbook([{"name": "whole", "nodeport_service": whole, "register": "svc"}])
    assert run.returncode == 0, run.output
    assert run.results["svc"]["changed"] is False
    assert run.results["svc"]["service"] == first.results["svc"]["service"]
    bad = {**whole, "service": {**entry, "type": "Nodeport"}}
    refused = playbook([{"name": "bad", "nodeport_service": bad, "register": "svc"}])
    assert refused.returncode != 0
    assert "service: value of type must be one of: ClusterIP, NodePort, LoadBalancer" in (
        refused.output
    )


def test_info_for_the_managed_services_at_once(playbook, tmp_path: Path) -> None:
    """load_balancers: exactly the Services named (namespace/name), one call, each diagnosed
    by doctor with its own settings; a Service not in the store is not made up."""
    store = tmp_path / "store"
    second = python_lb(store, name="python-two", ports=[{"name": "http", "port": 80}])
    second["register"] = "two"
    info = {
        "name": "info",
        "nodeport_service_info": {
            "store": {"path": str(store)},
            "doctor": True,
            "load_balancers": {
                "default/python-two": None,
                "default/python-lb": {"agent_check": False},
                "default/not-there": None,
            },
        },
        "register": "info",
    }
    run = playbook([python_lb(store), second, info])
    assert run.returncode == 0, run.output
    listed = run.results["info"]["services"]
    assert [s["name"] for s in listed] == ["python-lb", "python-two"]
    assert all(isinstance(s["findings"], list) for s in listed)
    assert listed[1]["node_ports"] == run.results["two"]["node_ports"]

    bad = {"nodeport_service_info": {"store": {"path": str(store)}, "load_balancers": {"x": None}}}
    failed = playbook([bad])
    assert failed.returncode != 0
    assert "'x' is not namespace/name" in failed.output
