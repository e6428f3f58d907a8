"""The one published form of an applied Service (nodeport_lb_applied_services): the module's
own options with what the control plane allocated, read back into the same model.Service by
one function, which refuses anything a Service could not hold."""

from __future__ import annotations

from importlib import util
from pathlib import Path

import pytest

from nodeport_lb.model import NodePortRange
from nodeport_lb.services import AppliedService, InvalidService, prepare_service

REPO = Path(__file__).resolve().parents[2]
ITEM = {
    "name": "python-lb",
    "type": "LoadBalancer",
    "external_traffic_policy": "Local",
    "selector": {"app": "python"},
    "ports": [{"name": "http", "port": 80, "target_port": 8080, "app_protocol": "http"}],
    "load_balancer": {"client_address": "proxy-v2"},
    "force_conflicts": True,
}


def applied_manifest() -> dict:
    manifest = prepare_service(NodePortRange(), options=ITEM)
    manifest["spec"]["ports"][0]["nodePort"] = 31001
    manifest["spec"]["healthCheckNodePort"] = 31897
    return manifest


def test_the_fact_reads_back_as_the_same_service() -> None:
    applied = AppliedService.from_result(ITEM, applied_manifest())
    fact = applied.to_fact(ITEM)
    assert fact["ports"] == [
        {
            "name": "http",
            "port": 80,
            "target_port": 8080,
            "node_port": 31001,
            "protocol": "TCP",
            "app_protocol": "http",
        }
    ]
    assert (fact["namespace"], fact["node_ports"], fact["health_check_node_port"]) == (
        "default",
        {"http": 31001},
        31897,
    )
    assert fact["force_conflicts"] is True  # the entry's own keys stay beside
    again = AppliedService.from_fact(fact)
    assert again == applied
    assert again.service.key == "default/python-lb" and again.service.is_local


def test_a_fact_in_another_form_is_refused_not_half_read() -> None:
    fact = AppliedService.from_result(ITEM, applied_manifest()).to_fact()
    fact["ports"][0]["nodePort"] = fact["ports"][0].pop("node_port")
    with pytest.raises(InvalidService, match=r"ports\[0\]: unknown field\(s\) nodePort"):
        AppliedService.from_fact(fact)
    with pytest.raises(InvalidService, match=r"spec\.type"):
        AppliedService.from_fact({**ITEM, "type": "LoadBalancer\nlisten evil"})
    with pytest.raises(InvalidService, match="expected a Service dict"):
        AppliedService.from_fact("python-lb")


def test_the_services_role_filter_publishes_that_form() -> None:
    spec = util.spec_from_file_location("filters", REPO / "plugins" / "filter" / "nodeport_lb.py")
    assert spec and spec.loader
    filters = util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    results = [
        {"item": ITEM, "service": applied_manifest(), "to_be_allocated": []},
        {"item": {"name": "gone", "state": "absent"}, "service": {}},
    ]
    (fact,) = filters.applied_services(results)
    assert AppliedService.from_fact(fact) == AppliedService.from_result(ITEM, applied_manifest())


def test_a_service_the_apply_pass_skipped_is_published_as_validated() -> None:
    """The apply pass runs only for the Services its validation found to change: the others
    are published from what the validation read, the applied ones from the apply pass."""
    spec = util.spec_from_file_location("filters", REPO / "plugins" / "filter" / "nodeport_lb.py")
    assert spec and spec.loader
    filters = util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    other_item = {**ITEM, "name": "other"}
    validated_other = applied_manifest()
    validated_other["metadata"]["name"] = "other"
    applied_other = applied_manifest()
    applied_other["metadata"]["name"] = "other"
    applied_other["spec"]["healthCheckNodePort"] = 32111
    validated = [
        {"item": ITEM, "service": applied_manifest(), "changed": False},
        {"item": other_item, "service": validated_other, "changed": True},
    ]
    applied = [
        {"item": ITEM, "skipped": True},
        {"item": other_item, "service": applied_other, "changed": True},
    ]
    unchanged, changed = filters.applied_services(validated, applied)
    assert AppliedService.from_fact(unchanged) == AppliedService.from_result(
        ITEM, applied_manifest()
    )
    assert AppliedService.from_fact(changed) == AppliedService.from_result(
        other_item, applied_other
    )
    assert AppliedService.from_fact(changed) != AppliedService.from_result(
        other_item, validated_other
    )
