from nodeport_lb.agent.endpoints import parse_endpoint_slice
from nodeport_lb.agent.rules import (
    MASQ_PICK_CHAIN,
    NO_ENDPOINTS_CHAIN,
    NO_ENDPOINTS_SET,
    PICK_CHAIN,
    SHARED_MAX_ENDPOINTS,
    RuleConfig,
    compute_service_rules,
    full_ruleset,
    generation_update,
    partial_update,
    read_generation,
    shared_chains,
)
from nodeport_lb.model import Service
from tests.support.objects import endpoint, endpoint_slice, service

CONFIG = RuleConfig("n1")
PORTS = [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": 31001}]


def rules_for(svc: dict, *endpoints: dict, config: RuleConfig = CONFIG):
    slices = [
        parse_endpoint_slice(
            endpoint_slice(svc["metadata"]["name"], 8080, list(endpoints), port_name="http")
        )
    ]
    return compute_service_rules(Service.from_manifest(svc), slices, config)


def verdict(result):
    """(the chain the nodePort goes to, the map of its endpoint slots, the slots, whether it
    is in the no-endpoints set) of a one-port Service."""
    (port,) = result.ports
    return port.chain, port.endpoints_map, dict(port.endpoint_elements), port.no_endpoints


def test_cluster_marks_for_masquerade_and_picks_uniformly() -> None:
    result = rules_for(
        service("web", PORTS), endpoint("10.1.0.1", "n2"), endpoint("10.1.0.2", "n3")
    )
    chain, endpoints_map, slots, empty = verdict(result)
    assert chain == MASQ_PICK_CHAIN
    assert endpoints_map == "nodeport-endpoints-2" and not empty
    pick = shared_chains()[MASQ_PICK_CHAIN]
    assert pick[0] == "meta mark set meta mark | 0x4000"
    assert (
        "dnat ip to meta l4proto . th dport . numgen random mod 2 map @nodeport-endpoints-2" in pick
    )
    assert slots == {"tcp . 31001 . 0": "10.1.0.1 . 8080", "tcp . 31001 . 1": "10.1.0.2 . 8080"}
    assert result.chains() == {}  # nothing of its own: a change is map elements only


def test_the_shared_chains_try_each_number_of_endpoints_in_turn() -> None:
    for chain in (PICK_CHAIN, MASQ_PICK_CHAIN):
        picks = [rule for rule in shared_chains()[chain] if rule.startswith("dnat")]
        assert picks == [
            "dnat ip to meta l4proto . th dport . numgen random "
            f"mod {n} map @nodeport-endpoints-{n}"
            for n in range(1, SHARED_MAX_ENDPOINTS + 1)
        ]


def test_local_uses_only_this_nodes_endpoints_without_snat() -> None:
    result = rules_for(
        service("web", PORTS, local=True), endpoint("10.1.0.1", "n1"), endpoint("10.1.0.2", "n2")
    )
    chain, endpoints_map, slots, _ = verdict(result)
    assert chain == PICK_CHAIN
    assert not any("mark" in rule for rule in shared_chains()[PICK_CHAIN])
    assert endpoints_map == "nodeport-endpoints-1"
    assert slots == {"tcp . 31001 . 0": "10.1.0.1 . 8080"}
    assert result.local_ready_endpoints == 1


def test_local_without_local_endpoint_drops() -> None:
    result = rules_for(service("web", PORTS, local=True), endpoint("10.1.0.2", "n2"))
    assert verdict(result) == (PICK_CHAIN, "", {}, False)
    assert shared_chains()[PICK_CHAIN][-1] == "drop"  # no slot, not in the no-endpoints set


def test_no_endpoint_anywhere_rejects() -> None:
    for svc in (service("web", PORTS), service("web", PORTS, local=True)):
        result = rules_for(
            svc, endpoint("10.1.0.2", "n1", ready=False, serving=False, terminating=True)
        )
        _, _, slots, empty = verdict(result)
        assert (slots, empty) == ({}, True)
        assert result.no_endpoint_ports() == {"tcp . 31001"}
    assert shared_chains()[NO_ENDPOINTS_CHAIN] == (
        "meta l4proto tcp reject with tcp reset",
        "reject",
    )
    assert shared_chains()[MASQ_PICK_CHAIN][-1] == f"goto {NO_ENDPOINTS_CHAIN}"
    assert shared_chains()[PICK_CHAIN][-2] == (
        f"meta l4proto . th dport @{NO_ENDPOINTS_SET} goto {NO_ENDPOINTS_CHAIN}"
    )


def test_local_falls_back_to_local_serving_terminating_endpoints() -> None:
    result = rules_for(
        service("web", PORTS, local=True),
        endpoint("10.1.0.1", "n1", ready=False, serving=True, terminating=True),
        endpoint("10.1.0.2", "n2"),
    )
    assert verdict(result)[2] == {"tcp . 31001 . 0": "10.1.0.1 . 8080"}
    assert result.local_ready_endpoints == 0  # the hcnp says 503 during the drain


def test_more_endpoints_than_the_shared_chains_cover_get_a_cascade_of_their_own() -> None:
    many = [
        endpoint(f"10.1.{i // 250}.{i % 250 + 1}", "n2") for i in range(SHARED_MAX_ENDPOINTS + 1)
    ]
    (port,) = rules_for(service("web", PORTS), *many).ports
    chain, rules, slots = port.chain, port.rules, port.endpoint_elements
    assert chain.startswith("svc-") and not slots
    assert rules[0] == "meta mark set meta mark | 0x4000"
    assert rules[1].startswith(f"numgen random mod {len(many)} == 0 meta l4proto tcp dnat")
    assert {rule.rsplit(" ", 1)[1] for rule in rules[1:]} == {
        f"{e['addresses'][0]}:8080" for e in many
    }


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
    assert "tcp . 31001 : goto masq-pick" in text
    assert (
        "add element inet nodeport-lb nodeport-endpoints-1 {\n\ttcp . 31001 . 0 : 10.1.0.1 . 8080"
        in text
    )
    assert "fib daddr type local ip daddr != 127.0.0.0/8" in text


def test_masquerade_keeps_the_client_port_when_it_can() -> None:
    # fully-random would move flows of different clients onto tuples the pod still holds in
    # TIME_WAIT (PAWS drops their SYNs); the kernel draws a random port when it must change one
    (rule,) = [line for line in full_ruleset(CONFIG, []).splitlines() if "masquerade" in line]
    assert rule.strip().endswith("masquerade")


def test_nodeport_addresses_restrict_the_match() -> None:
    config = RuleConfig("n1", ("10.77.0.0/24",))
    text = full_ruleset(config, [])
    assert "elements = { 10.77.0.0/24 }" in text
    assert "ip daddr @nodeport-addresses fib daddr type local" in text


def test_partial_update_touches_only_the_changed_service() -> None:
    old = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))}
    new = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.2", "n1"))}
    text = partial_update(old, new, {"default/web"})
    assert text.splitlines() == [
        "delete element inet nodeport-lb nodeport-endpoints-1 { tcp . 31001 . 0 }",
        "add element inet nodeport-lb nodeport-endpoints-1 { tcp . 31001 . 0 : 10.1.0.2 . 8080 }",
    ]
    assert partial_update(old, old, {"default/web"}) == ""


def test_partial_update_is_data_only_when_the_endpoint_count_changes() -> None:
    # no verdict element changes: that would make the kernel validate every element again
    two = {
        "default/web": rules_for(
            service("web", PORTS), endpoint("10.1.0.1", "n1"), endpoint("10.1.0.2", "n1")
        )
    }
    one = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))}
    none = {"default/web": rules_for(service("web", PORTS))}
    assert partial_update(two, one, {"default/web"}).splitlines() == [
        "delete element inet nodeport-lb nodeport-endpoints-2 { tcp . 31001 . 0, tcp . 31001 . 1 }",
        "add element inet nodeport-lb nodeport-endpoints-1 { tcp . 31001 . 0 : 10.1.0.1 . 8080 }",
    ]
    assert partial_update(one, none, {"default/web"}).splitlines() == [
        "delete element inet nodeport-lb nodeport-endpoints-1 { tcp . 31001 . 0 }",
        "add element inet nodeport-lb nodeport-no-endpoints { tcp . 31001 }",
    ]
    assert partial_update(none, one, {"default/web"}).splitlines() == [
        "delete element inet nodeport-lb nodeport-no-endpoints { tcp . 31001 }",
        "add element inet nodeport-lb nodeport-endpoints-1 { tcp . 31001 . 0 : 10.1.0.1 . 8080 }",
    ]


def test_partial_update_moves_the_verdict_when_the_traffic_policy_changes() -> None:
    cluster = {"default/web": rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))}
    local = {
        "default/web": rules_for(service("web", PORTS, local=True), endpoint("10.1.0.1", "n1"))
    }
    assert partial_update(cluster, local, {"default/web"}).splitlines() == [
        "delete element inet nodeport-lb nodeport-services { tcp . 31001 }",
        "add element inet nodeport-lb nodeport-services { tcp . 31001 : goto pick }",
    ]


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


def test_the_rule_count_includes_the_shared_chains_once_the_table_is_loaded() -> None:
    from nodeport_lb.agent.dataplane import Dataplane

    dataplane = Dataplane(CONFIG)
    assert dataplane.rule_count() == 0  # nothing loaded yet
    dataplane.applied = {
        "default/web": rules_for(service("web", PORTS), endpoint("10.1.0.1", "n1"))
    }
    dataplane.need_full_sync = False
    assert dataplane.rule_count() == sum(len(r) for r in shared_chains().values())


def test_the_generation_number_is_set_by_each_transaction_and_read_back() -> None:
    assert "\tset nodeport-generation {\n\t\ttype mark;\n\t}" in full_ruleset(CONFIG, [])
    assert generation_update(42, full=True) == (
        "add element inet nodeport-lb nodeport-generation { 0x2a }\n"
    )
    assert generation_update(42, full=False).splitlines() == [
        "flush set inet nodeport-lb nodeport-generation",
        "add element inet nodeport-lb nodeport-generation { 0x2a }",
    ]
    listing = (
        "table inet nodeport-lb {\n\tset nodeport-generation {\n\t\ttype mark\n"
        "\t\telements = { 0x0000002a }\n\t}\n}\n"
    )
    assert read_generation(listing) == 42
    assert read_generation(listing.replace("\t\telements = { 0x0000002a }\n", "")) is None
