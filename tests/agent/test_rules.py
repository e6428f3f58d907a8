from nodeport_lb.agent.endpoints import parse_endpoint_slice
from nodeport_lb.agent.rules import (
    RuleConfig,
    compute_service_rules,
    full_ruleset,
    partial_update,
)
from nodeport_lb.model import Service
from tests.netns.objects import endpoint, endpoint_slice, service

CONFIG = RuleConfig("n1")
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31001}]


def rules_for(svc: dict, *endpoints: dict, config: RuleConfig = CONFIG):
    slices = [
        parse_endpoint_slice(
            endpoint_slice(svc["metadata"]["name"], 8080, list(endpoints), port_name="http")
        )
    ]
    return compute_service_rules(Service.from_manifest(svc), slices, config)


def chain_rules(result) -> tuple[str, ...]:
    (port,) = result.ports
    return port.rules


def test_cluster_marks_for_masquerade_and_picks_uniformly() -> None:
    result = rules_for(
        service("web", PORTS), endpoint("10.1.0.1", "n2"), endpoint("10.1.0.2", "n3")
    )
    assert chain_rules(result) == (
        "meta mark set meta mark | 0x4000",
        "numgen random mod 2 == 0 meta l4proto tcp dnat ip to 10.1.0.1:8080",
        "meta l4proto tcp dnat ip to 10.1.0.2:8080",
    )


def test_local_uses_only_this_nodes_endpoints_without_snat() -> None:
    result = rules_for(
        service("web", PORTS, local=True), endpoint("10.1.0.1", "n1"), endpoint("10.1.0.2", "n2")
    )
    assert chain_rules(result) == ("meta l4proto tcp dnat ip to 10.1.0.1:8080",)
    assert result.local_ready_endpoints == 1


def test_local_without_local_endpoint_drops() -> None:
    result = rules_for(service("web", PORTS, local=True), endpoint("10.1.0.2", "n2"))
    assert chain_rules(result) == ("drop",)


def test_no_endpoint_anywhere_rejects() -> None:
    for svc in (service("web", PORTS), service("web", PORTS, local=True)):
        result = rules_for(
            svc, endpoint("10.1.0.2", "n1", ready=False, serving=False, terminating=True)
        )
        assert chain_rules(result) == ("meta l4proto tcp reject with tcp reset", "reject")


def test_local_falls_back_to_local_serving_terminating_endpoints() -> None:
    result = rules_for(
        service("web", PORTS, local=True),
        endpoint("10.1.0.1", "n1", ready=False, serving=True, terminating=True),
        endpoint("10.1.0.2", "n2"),
    )
    assert chain_rules(result) == ("meta l4proto tcp dnat ip to 10.1.0.1:8080",)
    assert result.local_ready_endpoints == 0  # the hcnp says 503 during the drain


def test_session_affinity_uses_timed_sets_per_endpoint() -> None:
    result = rules_for(service("web", PORTS, affinity_timeout=30), endpoint("10.1.0.1", "n1"))
    (port,) = result.ports
    (name,) = port.affinity_sets
    assert port.affinity_sets[name] == 30
    assert port.rules[1] == (
        f"ip saddr @{name} update @{name} {{ ip saddr }} meta l4proto tcp dnat ip to 10.1.0.1:8080"
    )


def test_source_ranges_jump_to_a_firewall_chain_that_drops_the_rest() -> None:
    result = rules_for(
        service("web", PORTS, type="LoadBalancer", source_ranges=["10.9.0.0/16"]),
        endpoint("10.1.0.1", "n1"),
    )
    (port,) = result.ports
    ((fw_name, fw_rules),) = port.extra_chains.items()
    assert port.rules[0] == f"jump {fw_name}"
    assert fw_rules == ("ip saddr 10.9.0.0/16 return", "drop")


def test_hcnp_only_for_load_balancer_local() -> None:
    lb = service("web", PORTS, type="LoadBalancer", local=True, hcnp=32000)
    assert rules_for(lb).health_check_node_port == 32000
    assert rules_for(service("web", PORTS)).health_check_node_port == 0


def test_full_ruleset_replaces_only_its_own_table() -> None:
    text = full_ruleset(CONFIG, [rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))])
    first_lines = text.splitlines()[:3]
    assert first_lines == [
        "add table inet nodeport-lb",
        "delete table inet nodeport-lb",
        "table inet nodeport-lb {",
    ]
    assert "tcp . 31001 : goto svc-" in text
    assert "fib daddr type local ip daddr != 127.0.0.0/8" in text


def test_nodeport_addresses_restrict_the_match() -> None:
    config = RuleConfig("n1", ("10.77.0.0/24",))
    text = full_ruleset(config, [])
    assert "elements = { 10.77.0.0/24 }" in text
    assert "ip daddr @nodeport-addresses fib daddr type local" in text


def test_partial_update_touches_only_the_changed_service() -> None:
    old = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))}
    new = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.2", "n1"))}
    text = partial_update(old, new, {"default/web"})
    chain = old["default/web"].ports[0].chain
    assert text.splitlines() == [
        f"flush chain inet nodeport-lb {chain}",
        f"add rule inet nodeport-lb {chain} meta mark set meta mark | 0x4000",
        f"add rule inet nodeport-lb {chain} meta l4proto tcp dnat ip to 10.1.0.2:8080",
    ]
    assert partial_update(old, old, {"default/web"}) == ""


def test_partial_update_removes_references_before_what_they_point_to() -> None:
    old = {
        "default/web": rules_for(
            service("web", PORTS, source_ranges=["10.9.0.0/16"], type="LoadBalancer"),
            endpoint("10.1.0.1", "n1"),
        )
    }
    lines = partial_update(old, {}, {"default/web"}).splitlines()
    delete_element = next(i for i, line in enumerate(lines) if line.startswith("delete element"))
    first_delete_chain = next(i for i, line in enumerate(lines) if line.startswith("delete chain"))
    assert delete_element < first_delete_chain
    assert sum(line.startswith("delete chain") for line in lines) == 2
