"""The chain on a cluster that runs kube-proxy: `lab up --kube-proxy` (every node runs the lab's
kube-proxy stand-in, kube-proxy.service with table ip kube-proxy) and the default site.yml.

The node_proxy role finds kube-proxy and runs the agent as its companion: kube-proxy's table is
left byte for byte as it was, the agent adds no DNAT of its own, and HAProxy weighs the nodes
by their pods through the agent's agent-check. The tests run in file order on one lab and each
leaves it converged: six pods on node1 and two on node2, then the node2 pods moved to node3.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from nodeport_lb.verify.haproxy import is_up, parse_show_stat
from nodeport_lb.verify.probes import DEFAULT_STATS_SOCKET, runtime_api_command

from .conftest import Lab, PlaybookRun, assert_succeeded, lab_exec, nodeport_lb, own_lab, site

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

BACKEND = "default_python-lb_http"
SHOW_STAT = runtime_api_command(DEFAULT_STATS_SOCKET, "show stat")
NODES = ("node1", "node2", "node3")
# extra source addresses for client1: unused host addresses of the lab's own segment (clients
# are .201 and up, one client here; the VIPs start at .240)
CLIENT_SOURCES = [f"10.213.0.{host}" for host in range(202, 238)]


@dataclass
class KubeProxyLab:
    lab: Lab
    services_run: PlaybookRun
    first_run: PlaybookRun
    tables_before: dict[str, str]  # kube-proxy's table after the Services exist, before the rest
    tables_after: dict[str, str]
    measured: dict[str, Any] = field(default_factory=dict)


def kube_proxy_table(node: str) -> str:
    return lab_exec(node, "nft list table ip kube-proxy").stdout


def stable_tables() -> dict[str, str]:
    """kube-proxy's tables once they stop changing (it follows the store within 100 ms)."""
    previous: dict[str, str] = {}
    for _ in range(50):
        tables = {node: kube_proxy_table(node) for node in NODES}
        if tables == previous:
            return tables
        previous = tables
        time.sleep(0.5)
    raise AssertionError("kube-proxy's tables kept changing")


@pytest.fixture(scope="module")
def cluster(request: pytest.FixtureRequest) -> Iterator[KubeProxyLab]:
    with own_lab(request, "--kube-proxy") as lab:
        services = site("--tags", "services")
        assert_succeeded(services)
        before = stable_tables()
        first = site()
        assert_succeeded(first)
        state = KubeProxyLab(lab, services, first, before, stable_tables())
        state.measured["site_first_run_s"] = round(first.seconds, 1)
        yield state
        print(f"\nkube-proxy lab measurements: {json.dumps(state.measured)}")


def status() -> dict[str, Any]:
    return json.loads(nodeport_lb("lab", "status", "--json").stdout)


def stats(lb: str = "lb1") -> dict[str, dict[str, str]]:
    rows = parse_show_stat(lab_exec(lb, SHOW_STAT).stdout)
    return {server: row for (backend, server), row in rows.items() if backend == BACKEND}


def weights(lb: str = "lb1") -> dict[str, int]:
    """HAProxy's effective weight of each UP node (the agent-check sets it), DOWN ones 0."""
    return {
        name: int(row["weight"] or 0) if is_up(row["status"]) else 0
        for name, row in stats(lb).items()
        if name in NODES
    }


def check_time(lb: str = "lb1") -> float:
    """The longest HAProxy takes to follow a node's change: a check's inter × max(fall, rise)
    and the agent's agent-inter, from the config it runs."""
    config = lab_exec(lb, "cat /etc/haproxy/haproxy.cfg").stdout

    def seconds(option: str, default: float) -> float:
        found = re.search(rf"\b{option} (\d+)(ms|s)?\b", config)
        if not found:
            return default
        return float(found.group(1)) / (1000 if found.group(2) == "ms" else 1)

    inter = seconds("inter", 2.0)
    return inter * max(seconds("fall", 3), seconds("rise", 2)) + seconds("agent-inter", 2.0)


def wait_for(condition: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout:.1f} s"
        time.sleep(0.2)
    return time.monotonic() - began


def python_pods(node: str | None = None) -> list[dict[str, Any]]:
    return [
        p
        for p in status()["pods"]
        if "python-lb" in (p["service"] or "").split(",") and node in (None, p["node"])
    ]


def spread(vip: str) -> list[dict[str, Any]]:
    """One request through the VIP from each client source address: the pods' answers."""
    script = (
        f"for a in {' '.join(CLIENT_SOURCES)}; do "
        f"curl -sS -m 3 --interface $a http://{vip}/ || echo '{{}}'; echo; done"
    )
    out = lab_exec("client1", script).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def client_sources(cluster: KubeProxyLab) -> Iterator[list[str]]:
    adds = "; ".join(f"ip addr add {a}/24 dev eth0" for a in CLIENT_SOURCES)
    lab_exec("client1", adds)
    try:
        yield CLIENT_SOURCES
    finally:
        dels = "; ".join(f"ip addr del {a}/24 dev eth0" for a in CLIENT_SOURCES)
        lab_exec("client1", dels, check=False)


def test_status_says_the_nodes_run_a_kube_proxy_stand_in(cluster: KubeProxyLab) -> None:
    assert status()["kube_proxy"] == "stand-in"
    table = nodeport_lb("lab", "status").stdout
    assert "kube-proxy: a STAND-IN on every node, not the real kube-proxy" in table
    for node in NODES:
        assert re.search(rf"^{node} .* stand-in \(active\)$", table, re.M), table


def test_site_converges_and_runs_the_agent_as_kube_proxys_companion(
    cluster: KubeProxyLab,
) -> None:
    recap = cluster.first_run.recap()
    assert set(recap) >= {"localhost", *NODES, "lb1", "lb2"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in recap.values())
    assert "nodeport-lb verify" in cluster.first_run.output  # the verification play passed
    for node in NODES:
        assert f"{node}: agent in companion mode (a kube-proxy process is running" in (
            cluster.first_run.output
        )
        exec_start = lab_exec(node, "systemctl show -p ExecStart --value nodeport-lb-agent")
        assert " agent --mode companion " in exec_start.stdout
        assert lab_exec(
            node, "systemctl is-active nodeport-lb-agent kube-proxy"
        ).stdout.split() == [
            "active",
            "active",
        ]


def test_a_second_run_changes_nothing(cluster: KubeProxyLab) -> None:
    second = site()
    cluster.measured["site_second_run_s"] = round(second.seconds, 1)
    assert_succeeded(second)
    changed = {host: c["changed"] for host, c in second.recap().items() if c["changed"]}
    assert changed == {}, second.output[-4000:]


def test_kube_proxys_table_is_byte_identical_before_and_after(cluster: KubeProxyLab) -> None:
    assert all("dnat to 10.213." in t for t in cluster.tables_before.values())  # it is in use
    assert cluster.tables_after == cluster.tables_before
    assert stable_tables() == cluster.tables_before  # the second run left it alone too


def test_the_agent_programs_no_dnat_of_its_own(cluster: KubeProxyLab) -> None:
    for node in NODES:
        tables = lab_exec(node, "nft list tables").stdout.splitlines()
        assert "table inet nodeport-lb" not in tables, tables
        ruleset = lab_exec(node, "nft list ruleset").stdout
        assert ruleset.count("dnat to") == kube_proxy_table(node).count("dnat to")


def test_traffic_through_the_vip_reaches_the_pod_with_the_clients_address(
    cluster: KubeProxyLab,
) -> None:
    vip = status()["vips"][0]
    answer = json.loads(lab_exec("client1", f"curl -sS -m 3 http://{vip}/").stdout)
    (pod,) = python_pods()
    assert (answer["pod"], answer["node"]) == (pod["name"], pod["node"])
    assert answer["client"] == "10.213.0.201"
    assert agent_check(pod["node"]) == "up 100%"


def agent_check(node: str) -> str:
    """What HAProxy's agent-check hears from the agent on ``node`` about python-lb."""
    address = next(h["address"] for h in status()["hosts"] if h["name"] == node)
    script = (
        f"exec 3<>/dev/tcp/{address}/10257; printf 'default/python-lb\\n' >&3; "
        "timeout 3 head -c 100 <&3"
    )
    return lab_exec(node, f"bash -c {json.dumps(script)}").stdout.strip()


def test_haproxy_weighs_the_nodes_by_their_pods_and_traffic_spreads_by_pods(
    cluster: KubeProxyLab, client_sources: list[str]
) -> None:
    nodeport_lb("lab", "pod", "add", "--node", "node1", "--labels", "app=python", "--count", "6")
    nodeport_lb("lab", "pod", "add", "--node", "node2", "--labels", "app=python")
    assert len(python_pods("node1")) == 6 and len(python_pods("node2")) == 2
    took = wait_for(
        lambda: weights("lb1") == weights("lb2") == {"node1": 6, "node2": 2, "node3": 0},
        3 * check_time(),
        "HAProxy weights 6 and 2",
    )
    cluster.measured["weights_followed_s"] = round(took, 1)
    answers = spread(status()["vips"][0])
    by_node = Counter(a.get("node") for a in answers)
    by_pod = Counter(a.get("pod") for a in answers)
    cluster.measured["spread_by_node"] = dict(by_node)
    cluster.measured["spread_by_pod"] = dict(by_pod)
    cluster.measured["weights"] = weights("lb1")
    # for the record (pytest -s): the lab and HAProxy's view of the backend
    print("\n" + nodeport_lb("lab", "status").stdout)
    for name, row in stats("lb1").items():
        print(f"lb1 {BACKEND} {name}: {row['status']} weight {row['weight']} {row['check_status']}")
    assert sum(by_node.values()) == len(client_sources), answers  # every request answered
    assert set(by_node) <= {"node1", "node2"}, by_node  # none to the node without pods
    # weights 6:2 send node1 about three times node2's share (even per node would be 1:1)
    assert by_node["node2"] > 0 and by_node["node1"] >= 2 * by_node["node2"], by_node
    assert all(a.get("client") in client_sources for a in answers)


def test_a_moved_pod_moves_the_traffic_within_the_check_time(
    cluster: KubeProxyLab, client_sources: list[str]
) -> None:
    """node2's two pods end and two start on node3: node2 leaves HAProxy, node3 joins."""
    moved = python_pods("node2")
    nodeport_lb("lab", "pod", "add", "--node", "node3", "--labels", "app=python", "--count", "2")
    began = time.monotonic()
    nodeport_lb("lab", "pod", "rm", "--grace", "0", *[p["name"] for p in moved])
    vip = status()["vips"][0]

    def moved_over() -> bool:
        nodes = Counter(a.get("node") for a in spread(vip))
        return (
            nodes["node2"] == 0
            and nodes["node3"] > 0
            and sum(nodes.values()) == len(client_sources)
        )

    limit = check_time() + 2.0  # + the endpoint controller and kube-proxy following the store
    wait_for(moved_over, limit, "traffic off node2 onto node3")
    cluster.measured["traffic_moved_s"] = round(time.monotonic() - began, 1)
    assert weights() == {"node1": 6, "node2": 0, "node3": 2}
    assert agent_check("node3") == "up 200%" and agent_check("node2").startswith("down")


def verify() -> Any:
    return nodeport_lb("verify", "-i", "inventories/lab", check=False, timeout=180)


def test_verify_passes_and_says_kube_proxy_serves_the_nodes(cluster: KubeProxyLab) -> None:
    result = verify()
    assert result.returncode == 0, result.stdout + result.stderr
    summary = nodeport_lb("summary", "-i", "inventories/lab").stdout
    for node in NODES:
        assert (
            f"{node}: nodePorts served by kube-proxy (nftables), with the nodeport-lb agent as "
            "its companion" in summary
        ), summary


def test_verify_names_the_node_whose_kube_proxy_disagrees_with_the_slices(
    cluster: KubeProxyLab,
) -> None:
    lab_exec("node3", "systemctl stop kube-proxy")  # its hcnp goes silent, its rules stay
    try:
        result = verify()
    finally:
        lab_exec("node3", "systemctl start kube-proxy", check=False)
    assert result.returncode == 1
    hcnp = re.search(r"hcnp (\d+) of Service default/python-lb", result.stdout)
    assert hcnp, result.stdout
    assert re.search(
        rf"^node3: hcnp {hcnp.group(1)} of Service default/python-lb — expected 200 with "
        r"localEndpoints 2 \(EndpointSlices in the store [^)]*\), found no answer .* from "
        r"kube-proxy$",
        result.stdout,
        re.M,
    ), result.stdout
    assert not re.search(r"^node[12]: hcnp", result.stdout, re.M), result.stdout
    deadline = time.monotonic() + 3 * check_time()
    while verify().returncode != 0:
        assert time.monotonic() < deadline, "verify does not pass again with kube-proxy back"
        time.sleep(1)
