"""The load-balancer plan: checks per traffic policy, the TCP-on-Local refusal, PROXY v2 on
traffic but never on checks, agent-check weights, and clear errors for bad inputs."""

from __future__ import annotations

import pytest

from nodeport_lb.loadbalancer import (
    TRANSPARENT_SOURCE,
    PlanError,
    hosts_from_inventory,
    interface_for,
    plan_haproxy,
    plan_keepalived,
)
from tests.lb.conftest import HCNP, LBS, NODES, VIPS, lb_facts, service


def only(plan):
    assert len(plan.listeners) == 1
    return plan.listeners[0]


def test_local_service_checks_hcnp_over_http_and_lists_every_node() -> None:
    listener = only(plan_haproxy([service()], NODES, VIPS))
    assert listener.bind == "10.213.0.240:80"  # the Service's port, on the VIP
    assert listener.name == "default_python-lb_http"
    assert "option httpchk GET /" in listener.backend_options
    assert "http-check expect status 200" in listener.backend_options
    assert [s.line.split()[1:3] for s in listener.servers] == [
        ["node1", "10.213.0.11:31001"],
        ["node2", "10.213.0.12:31001"],
        ["node3", "10.213.0.13:31001"],
    ]
    for server in listener.servers:
        assert f"check port {HCNP}" in server.options
    assert listener.default_server == "default-server inter 1s fall 2 rise 2"
    assert listener.balance == "source"
    assert "hash-type consistent" in listener.backend_options  # else weights are ignored
    assert "option redispatch" in listener.backend_options
    assert "retries 3" in listener.backend_options


def test_tcp_check_on_a_local_service_is_refused_with_the_reason() -> None:
    svc = service(load_balancer={"healthcheck": "tcp"})
    with pytest.raises(PlanError) as error:
        plan_haproxy([svc], NODES, VIPS)
    message = str(error.value)
    assert "Service default/python-lb" in message
    assert "externalTrafficPolicy: Local" in message
    assert f"healthCheckNodePort ({HCNP}) is open on every node" in message
    assert "always passes" in message


def test_cluster_service_checks_the_node_proxy_healthz() -> None:
    svc = service(external_traffic_policy="Cluster", health_check_node_port=0, load_balancer={})
    listener = only(plan_haproxy([svc], NODES, VIPS))
    assert "option httpchk GET /healthz" in listener.backend_options
    assert all("check port 10256" in s.options for s in listener.servers)
    assert all("agent-check" not in s.options for s in listener.servers)  # off for Cluster
    tcp = service(
        external_traffic_policy="Cluster",
        health_check_node_port=0,
        load_balancer={"healthcheck": "tcp"},
    )
    listener = only(plan_haproxy([tcp], NODES, VIPS))
    assert not any("httpchk" in line for line in listener.backend_options)
    assert all(s.options == "check" for s in listener.servers)  # TCP connect to the nodePort


def test_proxy_v2_on_traffic_never_on_checks() -> None:
    listener = only(plan_haproxy([service()], NODES, VIPS))
    for server in listener.servers:
        assert "send-proxy-v2" in server.options.split()
        # The check goes to another port, so HAProxy sends it bare; never forced back on.
        assert "check-send-proxy" not in server.options
        assert f"port {HCNP}" in server.options
    plain = only(plan_haproxy([service(load_balancer={})], NODES, VIPS))
    assert all("send-proxy" not in s.options for s in plain.servers)
    v1 = only(plan_haproxy([service(load_balancer={"client_address": "proxy-v1"})], NODES, VIPS))
    assert all("send-proxy " in s.options + " " for s in v1.servers)


def test_agent_check_weights_on_by_default_for_local() -> None:
    listener = only(plan_haproxy([service()], NODES, VIPS, {"agent_check_port": 10258}))
    for server in listener.servers:
        assert "weight 1 agent-check agent-port 10258 agent-inter 2s" in server.options
        assert server.options.endswith('agent-send "default/python-lb\\n"')
    off = only(plan_haproxy([service(load_balancer={"agent_check": False})], NODES, VIPS))
    assert all("agent" not in s.options for s in off.servers)
    with pytest.raises(PlanError, match="only means something for externalTrafficPolicy: Local"):
        plan_haproxy(
            [
                service(
                    external_traffic_policy="Cluster",
                    health_check_node_port=0,  # a Cluster Service has none
                    load_balancer={"agent_check": True},
                )
            ],
            NODES,
            VIPS,
        )


def test_http_mode_adds_forwardfor_and_tcp_mode_refuses_it() -> None:
    cluster = {"external_traffic_policy": "Cluster", "health_check_node_port": 0}
    listener = only(plan_haproxy([service(**cluster, load_balancer={"mode": "http"})], NODES, VIPS))
    assert listener.mode == "http" and listener.client_address == "forwardfor"
    assert "option forwardfor" in listener.backend_options
    assert "option httplog" in listener.frontend_options
    chosen = {"mode": "http", "client_address": "forwardfor"}
    local = only(plan_haproxy([service(load_balancer=chosen)], NODES, VIPS))
    assert "option forwardfor" in local.backend_options
    assert TRANSPARENT_SOURCE not in local.backend_options
    with pytest.raises(PlanError, match=r"forwardfor \(X-Forwarded-For\) needs mode: http"):
        plan_haproxy([service(load_balancer={"client_address": "forwardfor"})], NODES, VIPS)


def test_transparent_is_the_default_for_local_where_nodes_run_the_agent() -> None:
    plan = plan_haproxy([service(load_balancer={})], NODES, VIPS)
    listener = only(plan)
    assert listener.client_address == "transparent" and plan.transparent
    assert TRANSPARENT_SOURCE in listener.backend_options
    # no PROXY header, and the checks stay HTTP on the hcnp
    for server in listener.servers:
        assert "send-proxy" not in server.options and f"check port {HCNP}" in server.options
    assert plan.warnings == ()
    assert plan.to_dict()["tproxy"]["route_table"] == 4200
    # eTP Cluster: the node masquerades anyway, so no transparent by default, and refused
    cluster = {"external_traffic_policy": "Cluster", "health_check_node_port": 0}
    assert (
        only(plan_haproxy([service(**cluster, load_balancer={})], NODES, VIPS)).client_address
        == "none"
    )
    with pytest.raises(PlanError, match="with Cluster the node masquerades"):
        plan_haproxy(
            [service(**cluster, load_balancer={"client_address": "transparent"})], NODES, VIPS
        )


def test_transparent_refused_and_warned_where_a_node_has_no_agent() -> None:
    nodes = [NODES[0], {**NODES[1], "agent": False}, NODES[2]]
    with pytest.raises(PlanError, match=r"node2 do\(es\) not run it"):
        plan_haproxy([service(load_balancer={"client_address": "transparent"})], nodes, VIPS)
    plan = plan_haproxy([service(load_balancer={})], nodes, VIPS)
    assert only(plan).client_address == "none"
    (warning,) = plan.warnings
    assert "Service default/python-lb" in warning and "load balancer's address" in warning
    assert "node2 do(es) not run the nodeport-lb agent" in warning
    # chosen explicitly: still warned, with its own reason
    (warning,) = plan_haproxy(
        [service(load_balancer={"client_address": "none"})], NODES, VIPS
    ).warnings
    assert "nothing hands it on" in warning
    with pytest.raises(PlanError, match="nodeport_lb_node_agent"):
        plan_haproxy([service()], [{**NODES[0], "agent": "yes"}], VIPS)


def test_old_names_still_work_with_a_deprecation_warning() -> None:
    v2 = plan_haproxy([service(load_balancer={"proxy_protocol": "v2"})], NODES, VIPS)
    assert only(v2).client_address == "proxy-v2"
    assert all("send-proxy-v2" in s.options for s in only(v2).servers)
    (warning,) = v2.warnings
    assert "proxy_protocol: deprecated, use client_address: proxy-v2" in warning
    http = {"mode": "http", "forwardfor": True}
    ff = plan_haproxy([service(load_balancer=http)], NODES, VIPS)
    assert only(ff).client_address == "forwardfor"
    assert "forwardfor: deprecated, use client_address: forwardfor" in ff.warnings[0]
    off = plan_haproxy([service(load_balancer={"proxy_protocol": False})], NODES, VIPS)
    assert only(off).client_address == "none"  # the old spelling of "nothing" is kept
    with pytest.raises(PlanError, match="contradicts the deprecated"):
        plan_haproxy(
            [service(load_balancer={"proxy_protocol": "v2", "client_address": "transparent"})],
            NODES,
            VIPS,
        )
    with pytest.raises(PlanError, match="is not one of transparent, proxy-v2"):
        plan_haproxy([service(load_balancer={"client_address": "proxy"})], NODES, VIPS)


def test_tunables_and_their_validation() -> None:
    settings = {"inter": "500ms", "fall": 3, "rise": 1, "balance": "roundrobin", "retries": 1}
    listener = only(plan_haproxy([service()], NODES, VIPS, settings))
    assert listener.default_server == "default-server inter 500ms fall 3 rise 1"
    assert listener.balance == "roundrobin"
    assert "hash-type consistent" not in listener.backend_options
    assert "retries 1" in listener.backend_options
    no_redispatch = only(plan_haproxy([service()], NODES, VIPS, {"redispatch": False}))
    assert "option redispatch" not in no_redispatch.backend_options
    for bad, message in [
        ({"inter": "fast"}, "nodeport_lb_haproxy_inter: 'fast' is not an HAProxy time"),
        ({"fall": 0}, "nodeport_lb_haproxy_fall: 0 is out of range"),
        ({"balance": "random-ish"}, "nodeport_lb_haproxy_balance: 'random-ish' is not one of"),
        ({"bogus": 1}, "unknown setting(s) bogus"),
        ({"log": "a\nb"}, "nodeport_lb_haproxy_log"),
    ]:
        with pytest.raises(PlanError) as error:
            plan_haproxy([service()], NODES, VIPS, bad)
        assert message in str(error.value)


@pytest.mark.parametrize(
    ("vips", "message"),
    [
        (["10.0.0.300"], "nodeport_lb_vips[0]: '10.0.0.300' is not an IP address"),
        (["10.0.0.0/24"], "nodeport_lb_vips[0]: '10.0.0.0/24' is not an IP address"),
        ([], "expected a non-empty list"),
        ("10.0.0.1", "expected a non-empty list"),
        (["10.0.0.1", "10.0.0.1"], "listed twice"),
        (["127.0.0.1"], "cannot be a VIP"),
        (["2001:db8::1"], "only IPv4 VIPs"),
    ],
)
def test_invalid_vips_are_refused(vips, message: str) -> None:
    with pytest.raises(PlanError) as error:
        plan_haproxy([service()], NODES, vips)
    assert message in str(error.value)


def test_service_level_errors_name_the_service() -> None:
    cases = [
        (service(load_balancer={"mode": "udp"}), "load_balancer.mode: 'udp' is not one of"),
        (service(load_balancer={"vip": "10.9.9.9"}), "'10.9.9.9' is not one of nodeport_lb_vips"),
        (service(load_balancer={"colour": "red"}), "unknown setting(s) colour"),
        (service(load_balancer="yes"), "load_balancer: expected a dict"),
        (service(health_check_node_port=0), "make the Service type LoadBalancer"),
        (
            service(ports=[{"name": "http", "port": 80, "protocol": "TCP"}]),
            "no nodePort allocated",
        ),
    ]
    for svc, message in cases:
        with pytest.raises(PlanError) as error:
            plan_haproxy([svc], NODES, VIPS)
        assert "default/python-lb" in str(error.value)
        assert message in str(error.value)


def test_which_services_get_a_frontend() -> None:
    node_port_local = service(
        name="test-python", type="NodePort", health_check_node_port=0, load_balancer=None
    )
    plan = plan_haproxy([service(), node_port_local], NODES, VIPS)
    assert [listener.service for listener in plan.listeners] == ["default/python-lb"]
    with pytest.raises(PlanError, match="make the Service type LoadBalancer"):
        plan_haproxy([node_port_local | {"load_balancer": {"enabled": True}}], NODES, VIPS)
    udp = service(
        ports=[
            {"name": "dns", "port": 53, "node_port": 31053, "protocol": "UDP"},
            {"name": "http", "port": 80, "node_port": 31001, "protocol": "TCP"},
        ]
    )
    plan = plan_haproxy([udp], NODES, VIPS)
    assert [listener.port_name for listener in plan.listeners] == ["http"]
    assert plan.warnings == ("Service default/python-lb port dns: UDP is not balanced (TCP only)",)


def test_two_services_on_one_vip_port_conflict() -> None:
    other = service(name="other")
    with pytest.raises(PlanError, match=r"10.213.0.240:80 is already used by default/python-lb"):
        plan_haproxy([service(), other], NODES, VIPS)
    plan = plan_haproxy(
        [service(), service(name="other", load_balancer={"vip": "10.213.0.241"})],
        NODES,
        [*VIPS, "10.213.0.241"],
    )
    assert [listener.bind for listener in plan.listeners] == ["10.213.0.240:80", "10.213.0.241:80"]


def test_bad_nodes_are_refused() -> None:
    with pytest.raises(PlanError, match="group 'nodes' is empty"):
        plan_haproxy([service()], [], VIPS)
    with pytest.raises(PlanError, match="neither an IP address nor a host name"):
        plan_haproxy([service()], [{"name": "node1", "address": "10.0.0.1:80"}], VIPS)
    with pytest.raises(PlanError, match="listed twice"):
        plan_haproxy([service()], [NODES[0], NODES[0]], VIPS)


def test_hosts_from_inventory_prefers_the_explicit_address() -> None:
    hostvars = [
        {"inventory_hostname": "node1", "ansible_host": "192.0.2.1"},
        {
            "inventory_hostname": "node2",
            "ansible_host": "192.0.2.2",
            "nodeport_lb_node_address": "10.0.0.2",
        },
        {"inventory_hostname": "node3.example.com"},
    ]
    assert [(h["name"], h["address"]) for h in hosts_from_inventory(hostvars)] == [
        ("node1", "192.0.2.1"),
        ("node2", "10.0.0.2"),
        ("node3.example.com", "node3.example.com"),
    ]
    hostvars[0]["nodeport_lb_node_agent"] = False
    assert [h["agent"] for h in hosts_from_inventory(hostvars)] == [False, True, True]


# ------------------------------------------------------------------------------- keepalived


def test_keepalived_instance_per_vip_with_priority_by_position() -> None:
    vips = ["10.213.0.240", "10.213.0.241"]
    first = plan_keepalived(vips, "lb1", LBS, lb_facts("10.213.0.101"))
    second = plan_keepalived(vips, "lb2", LBS, lb_facts("10.213.0.102"))
    assert [i.vip for i in first.instances] == vips
    assert [i.virtual_router_id for i in first.instances] == [51, 52]
    assert {i.priority for i in first.instances} == {150}
    assert {i.priority for i in second.instances} == {140}
    assert {i.interface for i in first.instances} == {"eth0"}  # found from the facts
    # unicast to the other load balancer by default, accepting adverts only from it
    assert all(i.unicast_peers == ("10.213.0.102",) for i in first.instances)
    assert first.settings.vrrp_version == 3 and first.settings.advert_int == 0.5


def test_keepalived_priority_from_inventory_unicast_and_interface() -> None:
    lbs = [LBS[0] | {"priority": 90}, LBS[1]]
    plan = plan_keepalived(VIPS, "lb1", lbs, {}, {"unicast": True, "interface": "host0"})
    (instance,) = plan.instances
    assert instance.priority == 90
    assert instance.interface == "host0"
    assert instance.unicast_src_ip == "10.213.0.101"
    assert instance.unicast_peers == ("10.213.0.102",)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_pass": "secret"}, "VRRPv3 has no authentication"),
        ({"vrrp_version": 2, "advert_int": 0.5}, "VRRPv2 adverts are whole seconds"),
        (
            {"vrrp_version": 2, "advert_int": 1, "auth_pass": "much-too-long"},
            "1-8 printable characters",
        ),
        ({"virtual_router_id_base": 255}, "passes 255"),
        ({"interface": "eth0; rm -rf /"}, "is not an interface name"),
        ({"nopreempt": "yes"}, "nodeport_lb_keepalived_nopreempt: 'yes' is not a boolean"),
    ],
)
def test_keepalived_bad_settings(settings, message: str) -> None:
    with pytest.raises(PlanError) as error:
        plan_keepalived(
            ["10.213.0.240", "10.213.0.241"], "lb1", LBS, lb_facts("10.213.0.101"), settings
        )
    assert message in str(error.value)


def test_keepalived_errors_for_the_inventory() -> None:
    with pytest.raises(PlanError, match="no interface has an IPv4 network holding the VIP"):
        plan_keepalived(["10.9.0.1"], "lb1", LBS, lb_facts("10.213.0.101"))
    with pytest.raises(PlanError, match="not in the group lbs"):
        plan_keepalived(VIPS, "lb9", LBS, lb_facts("10.213.0.101"))
    with pytest.raises(PlanError, match="nodeport_lb_keepalived_priority"):
        plan_keepalived(VIPS, "lb1", [LBS[0] | {"priority": 300}], lb_facts("10.213.0.101"))
    with pytest.raises(PlanError, match="unicast VRRP needs the load balancers' IPv4"):
        plan_keepalived(
            VIPS,
            "lb1",
            [LBS[0], {"name": "lb2", "address": "lb2.example.com"}],
            lb_facts("10.213.0.101"),
            {"unicast": True},
        )


def test_interface_for_reads_ansible_facts() -> None:
    facts = lb_facts("10.213.0.101", "veth-lb1")
    facts["veth_lb1"] = facts.pop("veth-lb1")  # Ansible's fact key for a dashed name
    assert interface_for("10.213.0.240", facts) == ("veth-lb1", "10.213.0.101")
    assert interface_for("192.0.2.1", facts) is None


def test_a_service_whose_ports_are_yet_to_be_allocated_is_left_out_with_a_warning() -> None:
    """Check mode on a cluster: the API server picks the ports when it creates the Service,
    so the plan has nothing true to configure for it yet."""
    pending = service(name="new-lb", health_check_node_port=None)
    pending["to_be_allocated"] = ["spec.healthCheckNodePort"]
    plan = plan_haproxy([service(), pending], NODES, VIPS)
    assert [listener.name for listener in plan.listeners] == ["default_python-lb_http"]
    assert plan.warnings == (
        "Service default/new-lb: left out of this plan: the API server allocates "
        "spec.healthCheckNodePort when the Service is created",
    )
