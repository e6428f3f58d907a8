import pickle
from dataclasses import dataclass

from nodeport_lb.agent.endpoints import (
    Endpoint,
    PickledAsCall,
    endpoints_for_port,
    local_ready_count,
    parse_endpoint_slice,
    usable_endpoints,
)
from tests.support.objects import endpoint, endpoint_slice


def slice_of(*endpoints, port_name="http"):
    return parse_endpoint_slice(endpoint_slice("web", 8080, list(endpoints), port_name=port_name))


def test_conditions_default_like_the_api() -> None:
    raw = endpoint_slice("web", 8080, [{"addresses": ["10.0.0.1"], "nodeName": "n1"}])
    (ep,) = parse_endpoint_slice(raw).by_port[("", "TCP")]
    assert (ep.ready, ep.serving, ep.terminating) == (True, True, False)


def test_slice_without_service_label_is_ignored() -> None:
    raw = endpoint_slice("web", 8080, [])
    del raw["metadata"]["labels"]
    assert parse_endpoint_slice(raw) is None


def test_ready_endpoints_win_over_serving_terminating_ones() -> None:
    one = slice_of(
        endpoint("10.0.0.1", "n1"),
        endpoint("10.0.0.2", "n1", ready=False, serving=True, terminating=True),
    )
    eps = endpoints_for_port([one], "http", "TCP")
    assert [e.address for e in usable_endpoints(eps)] == ["10.0.0.1"]


def test_serving_terminating_used_only_when_nothing_is_ready_and_never_non_serving() -> None:
    one = slice_of(
        endpoint("10.0.0.2", "n1", ready=False, serving=True, terminating=True),
        endpoint("10.0.0.3", "n1", ready=False, serving=False, terminating=True),
    )
    eps = endpoints_for_port([one], "http", "TCP")
    assert [e.address for e in usable_endpoints(eps)] == ["10.0.0.2"]


def test_ports_are_matched_by_name_and_protocol() -> None:
    one = slice_of(endpoint("10.0.0.1", "n1"), port_name="metrics")
    assert endpoints_for_port([one], "http", "TCP") == []
    assert len(endpoints_for_port([one], "metrics", "TCP")) == 1
    assert endpoints_for_port([one], "metrics", "UDP") == []


def test_local_count_is_ready_endpoints_of_this_node_deduplicated_by_ip() -> None:
    a = slice_of(
        endpoint("10.0.0.1", "n1"),
        endpoint("10.0.0.2", "n2"),
        endpoint("10.0.0.3", "n1", ready=False, serving=True, terminating=True),
    )
    b = slice_of(endpoint("10.0.0.1", "n1"), port_name="metrics")
    eps = endpoints_for_port([a], "http", "TCP") + endpoints_for_port([b], "metrics", "TCP")
    assert local_ready_count(eps, "n1") == 1
    assert local_ready_count(eps, "n2") == 1
    assert local_ready_count(eps, "n3") == 0


@dataclass(frozen=True, slots=True)
class _OneField(PickledAsCall):
    name: str


def test_pickled_as_a_call_of_the_class_with_the_fields_in_order() -> None:
    ep = Endpoint("10.0.0.1", 8080, "n1", True, True, False)
    assert ep.__reduce__() == (Endpoint, ("10.0.0.1", 8080, "n1", True, True, False))
    assert pickle.loads(pickle.dumps(ep)) == ep
    parsed = slice_of(endpoint("10.0.0.1", "n1"), endpoint("10.0.0.2", "n2", ready=False))
    assert pickle.loads(pickle.dumps(parsed)) == parsed
    # one field: still a tuple of arguments
    assert _OneField("a").__reduce__() == (_OneField, ("a",))
    assert pickle.loads(pickle.dumps(_OneField("a"))) == _OneField("a")
