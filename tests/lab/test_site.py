"""site.yml on the lab: converges, is idempotent, and the chain behaves — the pod
sees the client, HAProxy follows the pods, the VIP survives its load balancer, and a bad
variable stops the play before any load balancer's config changes.

Runs after test_lab_e2e (file order, group "lab"); every test leaves the lab converged.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from nodeport_lb.lab.traffic import RequestLog
from nodeport_lb.verify.haproxy import is_up, parse_show_stat
from nodeport_lb.verify.probes import DEFAULT_STATS_SOCKET, runtime_api_command

from ..conftest import REPO
from .conftest import Converged, assert_succeeded, lab_exec, nodeport_lb, site

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

BACKEND = "default_python-lb_http"
SHOW_STAT = runtime_api_command(DEFAULT_STATS_SOCKET, "show stat")


def status() -> dict[str, Any]:
    return json.loads(nodeport_lb("lab", "status", "--json").stdout)


def address_of(name: str) -> str:
    return next(h["address"] for h in status()["hosts"] if h["name"] == name)


def python_pods() -> list[dict[str, Any]]:
    # a pod lists every Service that selects it: "python-lb,test-python"
    return [p for p in status()["pods"] if "python-lb" in p["service"].split(",")]


def up_nodes(lb: str = "lb1") -> set[str]:
    rows = parse_show_stat(lab_exec(lb, SHOW_STAT).stdout)
    return {
        server
        for (backend, server), row in rows.items()
        if backend == BACKEND and server not in ("FRONTEND", "BACKEND") and is_up(row["status"])
    }


def wait_for(condition: Any, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - began


def haproxy_configs() -> dict[str, str]:
    return {lb: lab_exec(lb, "sha256sum /etc/haproxy/haproxy.cfg").stdout for lb in ("lb1", "lb2")}


def test_site_converges(converged: Converged) -> None:
    recap = converged.first_run.recap()
    assert set(recap) >= {"localhost", "node1", "node2", "node3", "lb1", "lb2"}
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values())
    assert "nodeport-lb verify" in converged.first_run.output  # the verification play ran


def test_a_second_run_changes_nothing(converged: Converged) -> None:
    second = site()
    converged.measured["site_second_run_s"] = round(second.seconds, 1)
    assert_succeeded(second)
    changed = {host: c["changed"] for host, c in second.recap().items() if c["changed"]}
    assert changed == {}, second.output[-4000:]


def test_what_was_undone_by_hand_is_put_back_by_the_next_run(converged: Converged) -> None:
    """A run that finds nothing to change asks each host in one command; what an operator
    undid by hand on the backup load balancer (a stopped unit, a kernel setting, a file's mode
    and content) must still be found and put back, and nothing else touched."""
    lab_exec(
        "lb2",
        "systemctl stop nodeport-lb-tproxy && sysctl -qw net.ipv4.ip_nonlocal_bind=0"
        " && chmod 0666 /etc/systemd/system/haproxy.service.d/nodeport-lb.conf"
        " && echo '# edited by hand' >> /usr/local/sbin/nodeport-lb-tproxy",
    )
    repair = site("--limit", "localhost,lb2")
    assert_succeeded(repair)
    assert repair.recap()["lb2"]["changed"] >= 4, repair.output[-4000:]
    state = lab_exec(
        "lb2",
        "systemctl is-active nodeport-lb-tproxy; sysctl -n net.ipv4.ip_nonlocal_bind;"
        " stat -c %a /etc/systemd/system/haproxy.service.d/nodeport-lb.conf;"
        " grep -c 'edited by hand' /usr/local/sbin/nodeport-lb-tproxy || true",
    ).stdout.split()
    assert state == ["active", "1", "644", "0"]
    again = site("--limit", "localhost,lb2")
    assert_succeeded(again)
    assert again.recap()["lb2"]["changed"] == 0, again.output[-4000:]


def test_the_pod_sees_the_clients_own_address_through_the_vip(converged: Converged) -> None:
    vip = status()["vips"][0]
    answer = json.loads(lab_exec("client1", f"curl -sS -m 3 http://{vip}/").stdout)
    assert answer["client"] == address_of("client1")
    assert answer["node"] in {p["node"] for p in python_pods()}


def test_haproxy_has_up_exactly_the_nodes_with_pods(converged: Converged) -> None:
    pod_nodes = {p["node"] for p in python_pods()}
    for lb in ("lb1", "lb2"):
        assert up_nodes(lb) == pod_nodes


def test_moving_the_pod_moves_the_traffic_within_the_check_time(converged: Converged) -> None:
    (old,) = python_pods()
    target = next(n for n in ("node3", "node1") if n != old["node"])
    vip = status()["vips"][0]
    added = nodeport_lb("lab", "pod", "add", "--node", target, "--labels", "app=python")
    new_name = added.stdout.split()[0]
    converged.lab.remember_namespaces()
    up_after = wait_for(lambda: target in up_nodes(), 15, f"{target} UP in HAProxy")
    converged.measured["new_pod_to_haproxy_up_s"] = round(up_after, 2)
    with RequestLog("client1", vip, seconds=12) as log:
        removed_at = time.time()
        nodeport_lb("lab", "pod", "rm", old["name"], "--grace", "5")
    moved = log.first_after(removed_at, lambda s: s.node == target)
    failed = [s for s in log.samples if s.answer is None]
    converged.measured["pod_moved_to_traffic_moved_s"] = round(moved or -1, 2)
    # the terminating pod serves through its grace period while the checks move the traffic;
    # how fast that is (inter × fall) is bench/lab_failover.py's figure, not a test's
    assert moved is not None, [(s.at - removed_at, s.node) for s in log.samples]
    assert failed == []
    assert [p["name"] for p in python_pods()] == [new_name]
    assert up_nodes() == {target}


def test_stopping_the_master_lb_moves_the_vip(converged: Converged) -> None:
    vip = status()["vips"][0]
    try:
        with RequestLog("client1", vip, seconds=12) as log:
            stopped_at = time.time()
            nodeport_lb("lab", "fault", "stop-lb", "lb1")
        recovered = log.first_after(stopped_at, lambda s: s.answer is not None)
        assert vip in lab_exec("lb2", "ip -4 -o addr show").stdout
        converged.measured["master_lb_stopped_to_requests_ok_s"] = round(recovered or -1, 2)
        # requests answer again within the log's window; the time is bench/lab_failover.py's
        assert recovered is not None, [(round(s.at - stopped_at, 2), s.node) for s in log.samples]
    finally:
        nodeport_lb("lab", "fault", "start-lb", "lb1", timeout=180)
    # lb1 takes the VIP back (higher priority); its HAProxy finds the pod's node again
    back = wait_for(
        lambda: vip in lab_exec("lb1", "ip -4 -o addr show", check=False).stdout,
        60,
        "VIP back on lb1",
    )
    converged.measured["lb1_started_to_vip_back_s"] = round(back, 1)
    wait_for(lambda: up_nodes() == {p["node"] for p in python_pods()}, 30, "lb1 HAProxy UP")
    wait_for(lambda: vip not in lab_exec("lb2", "ip -4 -o addr show").stdout, 10, "lb2 VIP gone")


def test_a_crashed_master_lb_hands_the_vip_to_the_backup(converged: Converged) -> None:
    """A power cut, not a shutdown: keepalived on lb1 sends no goodbye, so lb2 takes over
    when lb1's adverts stop (3 × advert_int + skew with VRRPv3 at 0.5 s)."""
    vip = status()["vips"][0]
    try:
        with RequestLog("client1", vip, seconds=12) as log:
            crashed_at = time.time()
            nodeport_lb("lab", "fault", "stop-lb", "lb1", "--crash")
        recovered = log.first_after(crashed_at, lambda s: s.answer is not None)
        assert vip in lab_exec("lb2", "ip -4 -o addr show").stdout
        converged.measured["master_lb_crashed_to_requests_ok_s"] = round(recovered or -1, 2)
        # every request around the crash, for the failover timeline plot
        converged.measured["master_lb_crash_requests"] = [
            [round(s.at - crashed_at, 3), s.answer is not None] for s in log.samples
        ]
        assert recovered is not None, [(round(s.at - crashed_at, 2), s.node) for s in log.samples]
    finally:
        nodeport_lb("lab", "fault", "start-lb", "lb1", timeout=180)
    wait_for(
        lambda: vip in lab_exec("lb1", "ip -4 -o addr show", check=False).stdout, 60, "VIP back"
    )
    wait_for(lambda: up_nodes() == {p["node"] for p in python_pods()}, 30, "lb1 HAProxy UP")
    wait_for(lambda: vip not in lab_exec("lb2", "ip -4 -o addr show").stdout, 10, "lb2 VIP gone")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "nodeport_lb_services",
            None,  # the inventory's Services with a TCP check on python-lb
            "a TCP health check cannot be used for externalTrafficPolicy: Local",
        ),
        ("nodeport_lb_vips", ["10.213.0.300"], "is not an IP address"),
    ],
    ids=["tcp-check-on-local", "invalid-vip"],
)
def test_a_bad_variable_fails_before_any_lb_config_changes(
    converged: Converged, variable: str, value: Any, message: str
) -> None:
    if value is None:
        group_vars = REPO / "inventories/lab/group_vars/all/nodeport_lb.yml"
        value = yaml.safe_load(group_vars.read_text())["nodeport_lb_services"]
        python_lb = next(s for s in value if s["name"] == "python-lb")
        python_lb["load_balancer"] = {**python_lb.get("load_balancer", {}), "healthcheck": "tcp"}
    before = haproxy_configs()
    run = site("--tags", "services,lbs", "-e", json.dumps({variable: value}))
    assert run.returncode != 0
    assert message in run.output, run.output[-3000:]
    assert haproxy_configs() == before
