"""Hostile and broken input never takes working traffic down (real agents, real nftables).

Each test does what an attacker or an unlucky operator would, then checks what a user would:
traffic through the nodePort still answers, the hcnp still says 200 where the pod is, a table
of someone else's made before still exists, and the next real endpoint change still takes
effect within 2 s.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netns.conftest import SeedLab
from tests.support import seed as seed_topology
from tests.support.netlib import connect_outcome, http_get, python_cmd, wait_for
from tests.support.objects import endpoint, endpoint_slice, service
from tests.support.seed import ADDRESSES, APP_PORT, HCNP, PODS

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

POD_A = PODS["pod-a"][1]
POD_B = PODS["pod-b"][1]
NODE1, NODE2, CLIENT = ADDRESSES["node1"], ADDRESSES["node2"], ADDRESSES["client"]
SENTINEL = "table ip someone-elses"
OLD = "2020-01-01T00:00:00Z"
NEW = "2024-06-01T00:00:00Z"


def created(obj: dict, when: str) -> dict:
    obj["metadata"]["creationTimestamp"] = when
    return obj


def python_lb(*endpoints: dict) -> list[dict]:
    """The seed's python-lb, created long ago: a younger Service claiming its ports loses."""
    lb_service, lb_slice = seed_topology.python_lb(*endpoints)
    return [created(lb_service, OLD), lb_slice]


@pytest.fixture(scope="module")
def seed(seed_lab: SeedLab) -> Iterator[SeedLab]:
    for node in ("node1", "node2"):
        seed_lab.nft(node, "add", "table", "ip", "someone-elses")
    # as the systemd unit runs it: the last hcnp answers kept for a restart
    state = seed_lab.lab.workdir / "state-{node}.json"
    seed_lab.extra_agent_args = ("--state-file", str(state))
    seed_lab.publish(*python_lb())
    for node in ("node1", "node2"):
        seed_lab.start_agent(node)
    wait_for(lambda: hcnp(seed_lab, "node2")[0] == 200)
    yield seed_lab


def hcnp(seed: SeedLab, node: str) -> tuple[int, dict[str, str], bytes]:
    return http_get(seed.ns("client"), ADDRESSES[node], HCNP)


def agent_log(seed: SeedLab, node: str) -> str:
    return (seed.lab.workdir / f"agent-{node}.log").read_text(errors="replace")


def wait_for_log(seed: SeedLab, node: str, text: str, since: int = 0) -> None:
    wait_for(lambda: text in agent_log(seed, node)[since:], timeout=15)


def log_size(seed: SeedLab, node: str) -> int:
    return len(agent_log(seed, node))


def assert_still_serving(seed: SeedLab) -> None:
    """What a user checks: the path works, the LB's check is right, nothing else was touched,
    and the agents still follow the control plane."""
    status, _, body = http_get(seed.ns("client"), NODE2, 31001)
    assert status == 200 and json.loads(body) == {"pod": "pod-a", "peer": CLIENT}
    assert hcnp(seed, "node2")[0] == 200
    for node in ("node1", "node2"):
        assert SENTINEL in seed.nft(node, "list", "tables")
    seed.publish(*python_lb(endpoint(POD_A, "node2"), endpoint(POD_B, "node1")))
    wait_for(lambda: hcnp(seed, "node1")[0] == 200, timeout=2)
    seed.publish(*python_lb())
    wait_for(lambda: hcnp(seed, "node1")[0] == 503, timeout=2)


def metrics(seed: SeedLab, node: str) -> str:
    return http_get(seed.ns(node), "127.0.0.1", 10249, "/metrics")[2].decode()


def test_a_store_that_disappears_keeps_the_last_good_state(seed: SeedLab) -> None:
    store = seed.stores["node2"].path
    away = store.with_name(store.name + ".away")
    mark = log_size(seed, "node2")
    store.rename(away)
    try:
        wait_for_log(seed, "node2", "cannot list", mark)
        time.sleep(1.5)  # a rescan or two of the missing directory
        status, _, body = http_get(seed.ns("client"), NODE2, 31001)
        assert status == 200 and json.loads(body)["peer"] == CLIENT
        assert hcnp(seed, "node2")[0] == 200
        assert "nodeport_lb_source_healthy 0.0" in metrics(seed, "node2")
    finally:
        away.rename(store)
    wait_for_log(seed, "node2", "readable again", mark)
    assert_still_serving(seed)


def test_an_agent_started_without_its_store_keeps_the_table_it_finds(seed: SeedLab) -> None:
    store = seed.stores["node2"].path
    away = store.with_name(store.name + ".away")
    seed.lab.stop(seed.agents["node2"], signal.SIGTERM)
    store.rename(away)
    try:
        mark = log_size(seed, "node2")
        seed.start_agent("node2")
        wait_for_log(seed, "node2", "no complete listing of the source yet", mark)
        time.sleep(1.5)
        status, _, body = http_get(seed.ns("client"), NODE2, 31001)
        assert status == 200 and json.loads(body)["peer"] == CLIENT
        assert "31001" in seed.nft("node2", "list", "table", "inet", "nodeport-lb")
        # the load balancer's check still finds the pod's node (the last run's answers)
        assert hcnp(seed, "node2")[0] == 200
        assert hcnp(seed, "node1")[0] == 503
    finally:
        away.rename(store)
    wait_for(lambda: hcnp(seed, "node2")[0] == 200, timeout=5)
    assert_still_serving(seed)


def test_nft_script_injection_through_an_endpoint_address_is_impossible(seed: SeedLab) -> None:
    injected = (
        f"{POD_A}:{APP_PORT}\n\t}}\n}}\nflush ruleset\ntable inet nodeport-lb {{\n"
        f"\tchain injected {{\n\t\tip daddr {POD_A} tcp dport 1 meta l4proto tcp dnat ip to {POD_A}"
    )
    hostile = endpoint(POD_B, "node2")
    hostile["addresses"] = [injected]
    mark = log_size(seed, "node2")
    seed.publish(*python_lb(endpoint(POD_A, "node2"), hostile))
    wait_for_log(seed, "node2", "endpoint left out", mark)
    assert "endpointslice_default_python-lb-abcde.yaml" in agent_log(seed, "node2")[mark:]
    assert "injected" not in seed.nft("node2", "list", "ruleset")
    assert 'nodeport_lb_invalid_objects_total{kind="Endpoint"}' in metrics(seed, "node2")
    assert_still_serving(seed)


def test_a_netmask_cidr_is_refused_alone_and_host_bits_are_normalised(seed: SeedLab) -> None:
    netmask = created(
        service(
            "netmask",
            [{"port": 80, "targetPort": APP_PORT, "nodePort": 31060}],
            type="LoadBalancer",
            source_ranges=["10.77.0.0/255.255.0.0"],
        ),
        OLD,
    )
    host_bits = created(
        service(
            "host-bits",
            [{"port": 80, "targetPort": APP_PORT, "nodePort": 31061}],
            type="LoadBalancer",
            source_ranges=[f"{CLIENT}/24"],
        ),
        OLD,
    )
    mark = log_size(seed, "node2")
    seed.publish(
        netmask,
        endpoint_slice("netmask", APP_PORT, [endpoint(POD_A, "node2")]),
        host_bits,
        endpoint_slice("host-bits", APP_PORT, [endpoint(POD_A, "node2")]),
    )
    try:
        wait_for_log(seed, "node2", "Service default/netmask ignored", mark)
        status, _, body = wait_for(lambda: http_get(seed.ns("client"), NODE2, 31061))
        assert status == 200 and json.loads(body)["pod"] == "pod-a"
        assert "10.77.0.0/24" in seed.nft("node2", "list", "table", "inet", "nodeport-lb")
        assert connect_outcome(seed.ns("client"), NODE2, 31060) == "refused"
        assert_still_serving(seed)
    finally:
        for name in ("netmask", "host-bits"):
            seed.unpublish("Service", name)
            seed.unpublish("EndpointSlice", f"{name}-abcde")


def test_deep_json_neither_kills_the_store_thread_nor_the_start(seed: SeedLab) -> None:
    mark = log_size(seed, "node2")
    for store in seed.stores.values():
        (store.path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    try:
        wait_for_log(seed, "node2", "deep.json", mark)
        assert_still_serving(seed)
        seed.lab.stop(seed.agents["node1"], signal.SIGTERM)
        seed.start_agent("node1")  # the file is there at startup too
        wait_for(lambda: hcnp(seed, "node1")[0] == 503)
        assert_still_serving(seed)
    finally:
        for store in seed.stores.values():
            (store.path / "deep.json").unlink()


def _alias_bomb(leaf: str) -> str:
    lines = ["apiVersion: v1", "kind: Service", "metadata: {name: bomb, namespace: default}"]
    lines.append("spec:")
    lines.append("  a0: &a0 [x, x, x, x, x, x, x, x, x, x]")
    for level in range(1, 9):
        refs = ", ".join([f"*a{level - 1}"] * 10)
        lines.append(f"  a{level}: &a{level} [{refs}]")
    lines.append(f"  zz: {leaf}")
    return "\n".join(lines) + "\n"


def test_a_yaml_alias_bomb_does_not_stall_the_agent(seed: SeedLab) -> None:
    assert len(_alias_bomb("1")) < 1024
    mark = log_size(seed, "node2")
    for leaf in ("1", "2"):  # the second version must be compared with the first
        for store in seed.stores.values():
            (store.path / "bomb.yaml").write_text(_alias_bomb(leaf))
        time.sleep(0.3)
    try:
        wait_for_log(seed, "node2", "bomb.yaml", mark)
        assert_still_serving(seed)
    finally:
        for store in seed.stores.values():
            (store.path / "bomb.yaml").unlink()


def test_a_symlink_out_of_the_store_is_not_followed(seed: SeedLab) -> None:
    outside = seed.lab.workdir / "outside.yaml"
    outside.write_text(
        json.dumps(service("outside", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31050}]))
    )
    mark = log_size(seed, "node2")
    for store in seed.stores.values():
        link = store.path / ".outside.tmp"
        link.symlink_to(outside)
        os.rename(link, store.path / "outside.yaml")  # appears at once, as writers do
    try:
        wait_for_log(seed, "node2", "outside the store", mark)
        assert "31050" not in seed.nft("node2", "list", "table", "inet", "nodeport-lb")
        assert_still_serving(seed)
    finally:
        for store in seed.stores.values():
            (store.path / "outside.yaml").unlink()


def test_the_older_service_keeps_a_contested_node_port_and_hcnp(seed: SeedLab) -> None:
    shop = created(
        service("zzz-shop", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31002}]), OLD
    )
    # sorts first by name, created later: the API server would have refused its port
    thief = created(
        service("aaa-thief", [{"port": 80, "targetPort": APP_PORT, "nodePort": 31002}]), NEW
    )
    # a younger Service claiming python-lb's healthCheckNodePort
    hcnp_thief = created(
        service(
            "zzz-hcnp-thief",
            [{"port": 80, "targetPort": APP_PORT, "nodePort": 31003}],
            type="LoadBalancer",
            local=True,
            hcnp=HCNP,
        ),
        NEW,
    )
    seed.publish(
        shop,
        endpoint_slice("zzz-shop", APP_PORT, [endpoint(POD_A, "node2")]),
        thief,
        endpoint_slice("aaa-thief", APP_PORT, [endpoint(POD_B, "node1")]),
        hcnp_thief,
        endpoint_slice("zzz-hcnp-thief", APP_PORT, [endpoint(POD_B, "node1")]),
    )
    try:
        for node in ("node1", "node2"):  # a restart hands every object over at once
            seed.lab.stop(seed.agents[node], signal.SIGTERM)
            seed.start_agent(node)
        wait_for(lambda: hcnp(seed, "node2")[0] == 200)
        for node in ("node1", "node2"):
            status, _, body = wait_for(
                lambda n=node: http_get(seed.ns("client"), ADDRESSES[n], 31002)
            )
            assert json.loads(body)["pod"] == "pod-a"  # zzz-shop's, not aaa-thief's
        status, _, body = hcnp(seed, "node1")
        assert status == 503 and json.loads(body)["service"]["name"] == "python-lb"
        assert "held by the older Service default/zzz-shop" in agent_log(seed, "node1")
        assert_still_serving(seed)
    finally:
        for name in ("zzz-shop", "aaa-thief", "zzz-hcnp-thief"):
            seed.unpublish("Service", name)
            seed.unpublish("EndpointSlice", f"{name}-abcde")


def test_the_table_check_survives_a_missing_nft_binary(seed: SeedLab, tmp_path: Path) -> None:
    """nft gone from PATH (a package upgrade, a broken image): the agent's own checks must not
    die with it, and a flushed table still comes back."""
    seed.lab.stop(seed.agents["node1"], signal.SIGTERM)
    # no nft, no conntrack in the agent's PATH
    seed.start_agent("node1", env={**os.environ, "PATH": str(tmp_path)})
    try:
        wait_for(lambda: "31001" in seed.nft("node1", "list", "table", "inet", "nodeport-lb"))
        time.sleep(6)  # one table check (sync period 5 s) has run
        seed.nft("node1", "delete", "table", "inet", "nodeport-lb")
        wait_for(lambda: "31001" in seed.nft("node1", "list", "ruleset"), timeout=15, interval=0.2)
    finally:
        seed.lab.stop(seed.agents["node1"], signal.SIGTERM)
        seed.start_agent("node1")
    assert_still_serving(seed)


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: unreachable
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: agent
  user: {token: not-a-real-token}
contexts:
- name: unreachable
  context: {cluster: unreachable, user: agent}
current-context: unreachable
"""


def test_an_agent_started_while_the_api_server_is_down_keeps_the_table(
    seed: SeedLab, tmp_path: Path
) -> None:
    """The API server is down (here: nothing listens on its port) when the agent restarts:
    after its minute of waiting for a first listing it must still not replace the table."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    seed.lab.stop(seed.agents["node2"], signal.SIGTERM)
    mark = log_size(seed, "node2")
    command = python_cmd(
        "-m", "nodeport_lb", "agent", "--node-name", "node2", "--kubeconfig", str(kubeconfig)
    )
    api_agent = seed.lab.start(
        seed.ns("node2"), *command, "--sync-period", "5", log_name="agent-node2.log"
    )
    try:
        wait_for_log(seed, "node2", "list/watch failed", mark)
        wait_for(
            lambda: "the table stays as it is" in agent_log(seed, "node2")[mark:],
            timeout=90,
            interval=1,
        )
        time.sleep(2)  # a sync would have happened by now
        status, _, body = http_get(seed.ns("client"), NODE2, 31001)
        assert status == 200 and json.loads(body)["peer"] == CLIENT
        assert "31001" in seed.nft("node2", "list", "table", "inet", "nodeport-lb")
        assert "full sync" not in agent_log(seed, "node2")[mark:]
    finally:
        seed.lab.stop(api_agent, signal.SIGTERM)
        seed.start_agent("node2")
    wait_for(lambda: hcnp(seed, "node2")[0] == 200)
    assert_still_serving(seed)
