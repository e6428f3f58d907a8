"""The client's own address reaches any application through the VIP (transparent mode, the
lab inventory's default): the plain `python3 -m http.server` logs the client, before and after
the master load balancer crashes; the echo pod's TCP peer is the client; eTP Cluster still
masquerades; PROXY v2 and X-Forwarded-For still work when a Service chooses them.

Runs after test_site (file order, group "lab"); every test leaves the lab converged.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from nodeport_lb.lab.lifecycle import STORE_DIR
from nodeport_lb.store import ManifestStore

from ..conftest import REPO
from .conftest import Converged, assert_succeeded, lab_exec, nodeport_lb, site
from .test_site import address_of, python_pods, status, up_nodes, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

ACCESS_LINE = re.compile(r'^(\S+) - - \[[^]]+\] "GET (\S+) HTTP/1.1" 200')
GROUP_VARS = REPO / "inventories/lab/group_vars/all/nodeport_lb.yml"


def vip() -> str:
    return status()["vips"][0]


def lb_addresses() -> set[str]:
    return {address_of("lb1"), address_of("lb2")}


def get_through_vip(path: str, timeout: float = 8.0) -> str:
    """The body of the first answer (retrying: right after a crash the VIP is moving)."""
    deadline = time.monotonic() + timeout
    while True:
        result = lab_exec("client1", f"curl -sS -m 1 'http://{vip()}{path}'", check=False)
        if result.returncode == 0:
            return result.stdout
        assert time.monotonic() < deadline, f"{path}: no answer through the VIP: {result.stderr}"
        time.sleep(0.2)


def access_log(pod: str) -> list[tuple[str, str]]:
    """(peer, path) of each request the plain app logged."""
    text = nodeport_lb("lab", "pod", "logs", pod).stdout
    return [m.groups() for m in map(ACCESS_LINE.match, text.splitlines()) if m]


@contextlib.contextmanager
def lb1_crashed() -> Iterator[None]:
    """lb1 loses power (no goodbye advert); lb2 takes the VIP; lb1 boots again after."""
    nodeport_lb("lab", "fault", "stop-lb", "lb1", "--crash")
    try:
        wait_for(lambda: vip() in lab_exec("lb2", "ip -4 -o addr show").stdout, 10, "VIP on lb2")
        yield
    finally:
        nodeport_lb("lab", "fault", "start-lb", "lb1", timeout=180)
        wait_for(
            lambda: vip() in lab_exec("lb1", "ip -4 -o addr show", check=False).stdout,
            60,
            "VIP back on lb1",
        )
        wait_for(lambda: up_nodes() == {p["node"] for p in python_pods()}, 30, "lb1 HAProxy UP")


@pytest.fixture
def plain_app_on_node2(converged: Converged) -> Iterator[str]:
    """The seed's situation with its own application: the only app=python pod is the plain
    `python3 -m http.server` on node2; the echo pod comes back afterwards."""
    before = python_pods()
    nodeport_lb(
        "lab", "pod", "add", "--node", "node2", "--labels", "app=python",
        "--app", "http-server", "--name", "plain-seed",
    )  # fmt: skip
    converged.lab.remember_namespaces()
    for pod in before:
        nodeport_lb("lab", "pod", "rm", pod["name"], "--grace", "0")
    try:
        wait_for(lambda: up_nodes() == {"node2"}, 15, "node2 alone UP in HAProxy")
        yield "plain-seed"
    finally:
        nodeport_lb("lab", "pod", "add", "--node", "node2", "--labels", "app=python")
        nodeport_lb("lab", "pod", "rm", "plain-seed", "--grace", "0")
        wait_for(lambda: up_nodes() == {"node2"}, 15, "the echo pod's node UP again")


def test_the_plain_app_logs_the_clients_own_address_before_and_after_a_crash(
    plain_app_on_node2: str, converged: Converged
) -> None:
    client = address_of("client1")
    assert get_through_vip("/?via=lb1") == "pod plain-seed on node2\n"
    assert (client, "/?via=lb1") in access_log(plain_app_on_node2)
    with lb1_crashed():
        began = time.monotonic()
        assert get_through_vip("/?via=lb2") == "pod plain-seed on node2\n"
        converged.measured["crash_to_plain_app_answer_s"] = round(time.monotonic() - began, 2)
        assert (client, "/?via=lb2") in access_log(plain_app_on_node2)
    log = access_log(plain_app_on_node2)
    print("plain app's access log:", *log, sep="\n  ")
    assert not [peer for peer, _ in log if peer in lb_addresses()], log


def test_the_echo_pods_peer_is_the_client_before_and_after_a_crash(converged: Converged) -> None:
    client = address_of("client1")
    answer = json.loads(get_through_vip("/"))
    assert (answer["peer"], answer["client"]) == (client, client)
    with lb1_crashed():
        answer = json.loads(get_through_vip("/"))
        assert (answer["peer"], answer["client"]) == (client, client)


@pytest.fixture
def test_python_as_cluster() -> Iterator[None]:
    """The seed's first experiment: test-python with externalTrafficPolicy Cluster."""
    store = ManifestStore(STORE_DIR)
    original = next(
        s for s in store.load().of_kind("Service") if s["metadata"]["name"] == "test-python"
    )
    cluster = copy.deepcopy(original)
    cluster["spec"]["externalTrafficPolicy"] = "Cluster"
    store.write(cluster)
    try:
        yield
    finally:
        store.write(original)


def test_etp_cluster_via_node1_still_shows_node1(test_python_as_cluster: None) -> None:
    (pod,) = python_pods()
    assert pod["node"] != "node1"  # node1 forwards to another node's pod and masquerades
    node1 = address_of("node1")

    def peer() -> str | None:
        result = lab_exec("client1", f"curl -sS -m 2 http://{node1}:31000/", check=False)
        return json.loads(result.stdout)["peer"] if result.returncode == 0 else None

    wait_for(lambda: peer() == node1, 10, "the pod sees node1's address")


def _site_with_python_lb(load_balancer: dict[str, Any] | None) -> None:
    services = yaml.safe_load(GROUP_VARS.read_text())["nodeport_lb_services"]
    python_lb = next(s for s in services if s["name"] == "python-lb")
    python_lb.pop("load_balancer", None)
    if load_balancer is not None:
        python_lb["load_balancer"] = load_balancer
    run = site("--tags", "services,lbs", "-e", json.dumps({"nodeport_lb_services": services}))
    assert_succeeded(run)
    assert "deprecated" not in run.output


@pytest.mark.parametrize(
    ("load_balancer", "seen_as"),
    [
        ({"client_address": "proxy-v2"}, "client"),
        ({"mode": "http", "client_address": "forwardfor"}, "forwarded_for"),
    ],
    ids=["proxy-v2", "forwardfor"],
)
def test_proxy_v2_and_forwardfor_still_work_when_chosen(
    converged: Converged, load_balancer: dict[str, Any], seen_as: str
) -> None:
    client = address_of("client1")
    try:
        _site_with_python_lb(load_balancer)
        answer = json.loads(get_through_vip("/"))
        assert answer[seen_as] == client
        assert answer["peer"] in lb_addresses()  # no transparent connection: HAProxy's own
    finally:
        _site_with_python_lb(None)  # the inventory's defaults again
    answer = json.loads(get_through_vip("/"))
    assert (answer["peer"], answer["client"]) == (client, client)
