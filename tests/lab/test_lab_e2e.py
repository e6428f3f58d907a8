"""The lab for real: up, SSH/Ansible to every host, pods and their EndpointSlices, down.

Tests run in file order on one xdist worker (group "lab") against the session's one lab.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeport_lb.lab.lifecycle import STORE_DIR
from nodeport_lb.store import ManifestStore

from ..conftest import REPO
from .conftest import Lab, lab_leftovers, lab_netns_inodes, nodeport_lb

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

STORE = ManifestStore(STORE_DIR)
SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "python-lb", "namespace": "default"},
    "spec": {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Local",
        "selector": {"app": "python"},
        "ports": [{"name": "http", "port": 80, "targetPort": 31000, "protocol": "TCP"}],
    },
}


def endpoints_of(pod_name: str) -> list[dict[str, Any]]:
    return [
        endpoint
        for slice_ in STORE.load().of_kind("EndpointSlice")
        if slice_["metadata"]["labels"].get("kubernetes.io/service-name") == "python-lb"
        for endpoint in slice_["endpoints"]
        if endpoint["targetRef"]["name"] == pod_name
    ]


def test_up_builds_the_default_lab(lab: Lab) -> None:
    print(f"lab up took {lab.up_seconds:.1f}s")  # bounded by UP_TIMEOUT
    roles = [(h["name"], h["role"]) for h in lab.status["hosts"]]
    assert roles == [
        ("node1", "node"),
        ("node2", "node"),
        ("node3", "node"),
        ("lb1", "lb"),
        ("lb2", "lb"),
        ("client1", "client"),
    ]
    assert all(h["address"].startswith("10.") for h in lab.status["hosts"])
    assert lab.status["vips"] and all(v.startswith("10.") for v in lab.status["vips"])
    (seed,) = lab.status["pods"]
    assert seed["node"] == "node2" and seed["name"].startswith("python-")
    assert set(seed) == {"name", "node", "service", "address"}


def test_inventory_has_the_groups_and_the_store(lab: Lab) -> None:
    inventory = yaml.safe_load((REPO / "inventories/lab/hosts.yml").read_text())
    children = inventory["all"]["children"]["lab_hosts"]["children"]
    assert set(children["nodes"]["hosts"]) == {"node1", "node2", "node3"}
    assert set(children["lbs"]["hosts"]) == {"lb1", "lb2"}
    assert set(children["clients"]["hosts"]) == {"client1"}
    assert inventory["all"]["hosts"]["localhost"]["ansible_connection"] == "local"
    assert inventory["all"]["vars"]["nodeport_lb_store"]["path"] == str(STORE.path)


def test_ansible_reaches_every_host_over_ssh(lab: Lab) -> None:
    ansible = Path(sys.executable).with_name("ansible")
    result = subprocess.run(
        [str(ansible), "all", "-i", "inventories/lab", "-m", "ping", "-o"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for host in [*(h["name"] for h in lab.status["hosts"]), "localhost"]:
        assert f'{host} | SUCCESS => {{"changed": false,"ping": "pong"}}' in result.stdout


def test_exec_passes_output_and_exit_code(lab: Lab) -> None:
    result = nodeport_lb("lab", "exec", "node1", "--", "sh", "-c", "hostname; exit 3", check=False)
    assert (result.stdout, result.returncode) == ("node1\n", 3)


def test_hosts_can_set_net_sysctls(lab: Lab) -> None:
    # nftables too, once the roles have installed nft (test_packages)
    script = "sysctl -qw net.ipv4.ip_nonlocal_bind=1"
    assert nodeport_lb("lab", "exec", "lb1", "--", "sh", "-c", script, check=False).returncode == 0


def test_nodes_see_the_store_read_only(lab: Lab) -> None:
    result = nodeport_lb(
        "lab", "exec", "node1", "--", "touch", "/etc/nodeport-lb/manifests/probe", check=False
    )
    assert result.returncode != 0 and "Read-only" in result.stderr


def test_lab_has_no_way_out(lab: Lab) -> None:
    # 192.0.2.1 is TEST-NET-1: it must be unroutable from inside the lab
    result = nodeport_lb(
        "lab", "exec", "client1", "--", "ip", "route", "get", "192.0.2.1", check=False
    )
    assert result.returncode != 0


def wait_for_endpoints(pod_name: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not (found := endpoints_of(pod_name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_endpoint_controller_follows_a_new_service(lab: Lab) -> None:
    STORE.write(SERVICE)
    seed = lab.status["pods"][0]
    (endpoint,) = wait_for_endpoints(seed["name"])
    assert endpoint["addresses"] == [seed["address"]] and endpoint["nodeName"] == "node2"
    assert nodeport_lb("lab", "sync-endpoints").stdout.strip() == "EndpointSlices up to date"


def test_pod_add_gives_an_endpoint_and_the_echo_answers_the_client(lab: Lab) -> None:
    added = nodeport_lb(
        "lab", "pod", "add", "--node", "node1", "--labels", "app=python", "--name", "python-e2e"
    )
    name, node, address = added.stdout.split()
    lab.remember_namespaces()
    assert (name, node) == ("python-e2e", "node1")
    (endpoint,) = endpoints_of("python-e2e")
    assert endpoint["addresses"] == [address]
    assert endpoint["nodeName"] == "node1"
    assert endpoint["conditions"] == {"ready": True, "serving": True, "terminating": False}

    curl = nodeport_lb(
        "lab", "exec", "client1", "--", "curl", "-sS", "-m", "5", f"http://{address}:31000/any/path"
    )
    client = next(h["address"] for h in lab.status["hosts"] if h["name"] == "client1")
    assert json.loads(curl.stdout) == {
        "pod": "python-e2e",
        "node": "node1",
        "peer": client,
        "client": client,
    }
    status = json.loads(nodeport_lb("lab", "status", "--json").stdout)
    assert {
        "name": "python-e2e",
        "node": "node1",
        "service": "python-lb",
        "address": address,
    } in status["pods"]


def test_pod_rm_drains_then_removes(lab: Lab) -> None:
    remover = subprocess.Popen(
        [sys.executable, "-m", "nodeport_lb", "lab", "pod", "rm", "python-e2e", "--grace", "3"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 2.5
        conditions = None
        while time.monotonic() < deadline:
            endpoints = endpoints_of("python-e2e")
            if endpoints and endpoints[0]["conditions"]["terminating"]:
                conditions = endpoints[0]["conditions"]
                break
            time.sleep(0.05)
        assert conditions == {"ready": False, "serving": True, "terminating": True}
    finally:
        output, errors = remover.communicate(timeout=30)
    assert remover.returncode == 0, output + errors
    assert endpoints_of("python-e2e") == []
    assert (
        "nplb-pod-python-e2e"
        not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    )


def test_http_server_pod_is_the_plain_app_and_logs_the_client(lab: Lab) -> None:
    """`--app http-server`: a plain `python3 -m http.server`, which knows no PROXY header;
    its access log (`lab pod logs`) names the TCP peer of each request."""
    added = nodeport_lb(
        "lab",
        "pod",
        "add",
        "--node",
        "node3",
        "--labels",
        "app=plain",
        "--name",
        "plain-e2e",
        "--app",
        "http-server",
    )
    lab.remember_namespaces()
    try:
        _, _, address = added.stdout.split()
        curl = nodeport_lb(
            "lab", "exec", "client1", "--", "curl", "-sS", "-m", "5", f"http://{address}:31000/"
        )
        assert curl.stdout == "pod plain-e2e on node3\n"
        client = next(h["address"] for h in lab.status["hosts"] if h["name"] == "client1")
        log = nodeport_lb("lab", "pod", "logs", "plain-e2e").stdout
        (line,) = [line for line in log.splitlines() if '"GET / HTTP/1.1" 200' in line]
        assert line.startswith(f"{client} - - [")
        # a PROXY header is garbage to it: it answers 400 as such an app does (without a
        # status line, since it never read an HTTP version)
        proxy = nodeport_lb(
            "lab",
            "exec",
            "client1",
            "--",
            "curl",
            "-sS",
            "-m",
            "5",
            "--http0.9",
            "--haproxy-protocol",
            f"http://{address}:31000/",
        )
        assert "Error code: 400" in proxy.stdout
    finally:
        nodeport_lb("lab", "pod", "rm", "plain-e2e", "--grace", "0")
    assert nodeport_lb("lab", "pod", "logs", "plain-e2e", check=False).returncode == 1


def test_stopped_node_is_cut_off_and_lab_up_boots_it_again(lab: Lab) -> None:
    probe = ["lab", "exec", "client1", "--", "nc", "-z", "-w", "1", "10.213.0.13", "22"]
    assert nodeport_lb(*probe, check=False).returncode == 0
    nodeport_lb("lab", "fault", "stop-node", "node3")
    assert "stopped" in next(
        line
        for line in nodeport_lb("lab", "status").stdout.splitlines()
        if line.startswith("node3")
    )
    assert nodeport_lb(*probe, check=False).returncode != 0
    nodeport_lb("lab", "up")  # the lab exists: up only boots what is stopped
    assert nodeport_lb("lab", "exec", "node3", "--", "hostname").stdout == "node3\n"
    assert nodeport_lb("lab", "status").returncode == 0


def test_down_leaves_nothing(lab: Lab) -> None:
    inodes = lab.netns_inodes | lab_netns_inodes()
    began = time.monotonic()
    nodeport_lb("lab", "down")
    print(f"lab down took {time.monotonic() - began:.1f}s")
    assert lab_leftovers(lab.before, inodes) == {
        "netns": [],
        "mounts": [],
        "links": [],
        "processes": [],
    }
    assert not (REPO / "inventories/lab/hosts.yml").exists()
    # and a second down finds nothing to do; status says the lab is not up
    assert nodeport_lb("lab", "down").stdout.strip() == "nothing to remove"
    assert nodeport_lb("lab", "status", check=False).returncode == 3


def test_down_cleans_up_after_a_killed_up(lab: Lab) -> None:
    """`lab up` killed while hosts boot (SIGKILL: no cleanup of its own), then `lab down`."""
    up = subprocess.Popen(
        [sys.executable, "-m", "nodeport_lb", "lab", "up"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and up.poll() is None:
            state = Path("/var/lib/nodeport-lb/lab/state.json")
            with contextlib.suppress(FileNotFoundError, ValueError):
                if any(h["nspawn_pid"] for h in json.loads(state.read_text())["hosts"]):
                    break
            time.sleep(0.02)
    finally:
        up.kill()
        up.wait()
    inodes = lab.netns_inodes | lab_netns_inodes()
    nodeport_lb("lab", "down")
    assert lab_leftovers(lab.before, inodes) == {
        "netns": [],
        "mounts": [],
        "links": [],
        "processes": [],
    }
