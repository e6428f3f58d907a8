"""Transparent mode for real: Debian's HAProxy, nftables and the agent in network namespaces
(the rack of tests/lb/rack.py: one Ethernet segment, client, lb1, lb2, node1 and its pod, the
plain `python3 -m http.server` that knows nothing of PROXY headers)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lb.rack import CLIENT, LBS, NODE, Rack, build_rack
from tests.support.netlib import http_get, lab_session, wait_for

pytestmark = [
    pytest.mark.netns,
    pytest.mark.xdist_group("netns"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("haproxy") or not shutil.which("setpriv"),
        reason="needs root, haproxy and setpriv",
    ),
]

NODE_PORT = 31001


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[Rack]:
    # HAProxy runs as an unprivileged user: its files must be readable outside root's tmp
    workdir = Path(tempfile.mkdtemp(prefix="nplb-transparent-"))
    workdir.chmod(0o755)
    try:
        with lab_session(tmp_path) as lab:
            rack = build_rack(lab, workdir, tmp_path)  # the defaults: transparent
            assert rack.plan["transparent"]
            yield rack
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_served(rack: Rack, path: str) -> tuple[int, bytes]:
    return wait_for(lambda: rack.get(path), timeout=15.0, interval=0.2)


def test_plain_app_logs_the_clients_address_through_either_load_balancer(rack: Rack) -> None:
    status, body = _wait_served(rack, "/?via=lb1")
    assert (status, body) == (200, b"plain app\n")
    assert (CLIENT, "/?via=lb1") in rack.pod_log()
    assert not any(peer in LBS.values() for peer, _ in rack.pod_log())

    # HAProxy kept its capabilities as the unprivileged user, without a `user` line
    status_file = Path(f"/proc/{rack.haproxy['lb1'].pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status_file, re.M)
    assert uid and int(uid.group(1)) != 0

    # the master LB crashes: its connections go with it; the VIP moves; lb2's mark and
    # route were on the node ahead of time, so the first request through lb2 works
    rack.haproxy["lb1"].kill()
    rack.haproxy["lb1"].wait()
    rack.move_vip(to="lb2", away_from="lb1")
    status, body = _wait_served(rack, "/?via=lb2")
    assert (status, body) == (200, b"plain app\n")
    assert (CLIENT, "/?via=lb2") in rack.pod_log()
    assert not any(peer in LBS.values() for peer, _ in rack.pod_log())


def test_health_checks_come_from_the_load_balancers_own_addresses(rack: Rack) -> None:
    _wait_served(rack, "/")
    sources = rack.check_sources()
    assert sources.get(LBS["lb1"], 0) > 0 and sources.get(LBS["lb2"], 0) > 0, sources
    assert sources.get("0.0.0.0/0", 0) == 0, sources


def test_each_lb_has_its_own_mark_and_table_on_the_node(rack: Rack) -> None:
    _wait_served(rack, "/")
    table = rack.lab.run(
        rack.ns("node1"), "nft", "list", "table", "inet", "nodeport-lb-return-path"
    ).stdout
    for lb in LBS:
        assert f"ether saddr {rack.macs[lb]}" in table, table
    rules = rack.lab.run(rack.ns("node1"), "ip", "-4", "rule", "show").stdout
    assert "fwmark 0x100000/0xf00000 lookup 4201" in rules, rules
    assert "fwmark 0x200000/0xf00000 lookup 4202" in rules, rules
    for number, lb in ((4201, "lb1"), (4202, "lb2")):
        routes = rack.lab.run(
            rack.ns("node1"), "ip", "-4", "route", "show", "table", str(number)
        ).stdout
        assert f"default via {LBS[lb]} dev eth0 onlink" in routes, routes
    # the client reaching the node directly is untouched: no LB, no mark, a direct reply
    status, _, _ = http_get(rack.ns("client"), NODE, NODE_PORT, "/?via=direct", timeout=3.0)
    assert status == 200
    assert (CLIENT, "/?via=direct") in rack.pod_log()
