"""nodeport_service through real ansible-playbook against a Kubernetes API: the stand-in API
server of apiserver.py (no real API server can run on these machines; the fake sits at the
HTTP boundary, nothing of ours or of the kubernetes client is patched)."""

from __future__ import annotations

from pathlib import Path

from tests.modules.conftest import playbook  # noqa: F401  (fixture)

from .apiserver import FakeApiServer
from .conftest import TOKEN
from .test_kube_backend import update_as


def task(server: FakeApiServer, **overrides) -> dict:
    args = {
        "store": {"host": server.url, "api_key": TOKEN},
        "name": "python-lb",
        "type": "LoadBalancer",
        "external_traffic_policy": "Local",
        "selector": {"app": "python"},
        "ports": [{"name": "http", "port": 80, "target_port": 31000, "node_port": 31001}],
    }
    args.update(overrides)
    return {"nodeport_service": args, "register": "svc"}


def test_module_applies_through_the_api_and_reports_its_ports(
    playbook,  # noqa: F811
    secured_apiserver: FakeApiServer,
    tmp_path: Path,
) -> None:
    first = playbook([task(secured_apiserver)])
    assert first.returncode == 0, first.output
    svc = first.results["svc"]
    assert svc["changed"] is True and svc["node_ports"] == {"http": 31001}
    assert 30000 <= svc["health_check_node_port"] <= 32767
    [apply] = secured_apiserver.requests("PATCH")
    assert apply.params["fieldManager"] == "nodeport-lb"

    again = playbook([task(secured_apiserver)])
    assert again.returncode == 0, again.output
    assert again.results["svc"]["changed"] is False
    assert again.results["svc"]["health_check_node_port"] == svc["health_check_node_port"]


def test_unreachable_api_is_one_clear_line(playbook, tmp_path: Path) -> None:  # noqa: F811
    run = playbook(
        [
            {
                "nodeport_service": {
                    "store": {"host": "http://127.0.0.1:9"},
                    "name": "x",
                    "type": "NodePort",
                    "ports": [{"port": 80}],
                }
            }
        ]
    )
    assert run.returncode != 0
    assert "cannot reach the Kubernetes API server at http://127.0.0.1:9" in run.output
    assert "Traceback" not in run.output


def test_check_mode_names_the_ports_the_api_server_will_pick(
    playbook,  # noqa: F811
    apiserver: FakeApiServer,
) -> None:
    run = playbook([task(apiserver, store={"host": apiserver.url})], "--check", "--diff")
    assert run.returncode == 0, run.output
    svc = run.results["svc"]
    assert svc["changed"] is True
    assert svc["node_ports"] == {"http": 31001}
    assert svc["health_check_node_port"] is None
    assert svc["to_be_allocated"] == ["spec.healthCheckNodePort"]
    assert "uid:" not in run.output
    assert apiserver.services == {}


def test_a_field_owned_by_another_manager_fails_the_task_unless_forced(
    playbook,  # noqa: F811
    apiserver: FakeApiServer,
) -> None:
    store = {"host": apiserver.url}
    created = playbook([task(apiserver, store=store)])
    assert created.returncode == 0, created.output
    # a Helm upgrade (an Update by manager "helm") changes the selector behind our back
    update_as(apiserver, "helm", "python-lb", {"spec": {"selector": {"app": "python-v2"}}})
    stored = dict(apiserver.services)

    for mode in ((), ("--check",)):
        refused = playbook([task(apiserver, store=store)], *mode)
        assert refused.returncode != 0
        assert "Apply failed with 1 conflict: conflict with" in refused.output
        assert "helm" in refused.output and ".spec.selector" in refused.output
        assert apiserver.services == stored

    forced = playbook([task(apiserver, store=store, force_conflicts=True)])
    assert forced.returncode == 0, forced.output
    assert forced.results["svc"]["changed"] is True
    assert apiserver.services[("default", "python-lb")]["spec"]["selector"] == {"app": "python"}
