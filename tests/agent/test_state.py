from nodeport_lb.agent.rules import RuleConfig
from nodeport_lb.agent.state import ClusterState
from nodeport_lb.model import NodePortRange
from nodeport_lb.store import Changes, object_key
from tests.support.objects import endpoint, endpoint_slice, service


def new_state() -> ClusterState:
    return ClusterState(RuleConfig("n1"), NodePortRange())


def put(state: ClusterState, *objects: dict):
    return state.apply(Changes({object_key(o): o for o in objects}))


def svc(name: str, node_port: int, **kwargs) -> dict:
    return service(name, [{"port": 80, "targetPort": 8080, "nodePort": node_port}], **kwargs)


def test_invalid_service_keeps_the_last_good_version() -> None:
    state = new_state()
    put(state, svc("web", 31000))
    result = put(state, svc("web", 29999))  # outside 30000-32767
    assert result.invalid and "spec.ports[0].nodePort" in result.invalid[0]
    assert state.rules["default/web"].ports[0].node_port == 31000


def test_endpoint_change_recomputes_only_its_service() -> None:
    state = new_state()
    put(state, svc("a", 31000), svc("b", 31001))
    result = put(state, endpoint_slice("b", 8080, [endpoint("10.0.0.1", "n1")]))
    assert result.dirty == {"default/b"}
    assert state.rules["default/b"].ports[0].usable_addresses == {"10.0.0.1"}


def test_a_taken_node_port_waits_until_its_owner_leaves() -> None:
    state = new_state()
    put(state, svc("a", 31000))
    put(state, svc("b", 31000))
    assert state.rules["default/b"].ports == ()
    state.apply(Changes(deletes={object_key(svc("a", 31000))}))
    assert "default/a" not in state.rules
    assert state.rules["default/b"].ports[0].node_port == 31000


def test_node_drain_taint_and_deletion_make_the_node_ineligible() -> None:
    state = new_state()
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    put(state, node)
    assert state.node_eligible
    put(state, {**node, "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler"}]}})
    assert not state.node_eligible
    put(state, {**node, "metadata": {"name": "n1", "deletionTimestamp": "2024-01-01T00:00:00Z"}})
    assert not state.node_eligible
    put(state, node)  # our node back without taint or deletion
    assert state.node_eligible
    put(
        state,
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": "other"},
            "spec": {"taints": [{"key": "ToBeDeletedByClusterAutoscaler"}]},
        },
    )
    assert state.node_eligible  # another node's drain taint does not count for this one
