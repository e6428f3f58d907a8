"""`nodeport-lb verify` on the lab: it passes on the converged lab, and names the
host and the object on each state broken on purpose — each restored afterwards, also when
the test fails, and the suite passing again proves it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from nodeport_lb.lab.lifecycle import STORE_DIR
from nodeport_lb.store import ManifestStore
from nodeport_lb.verify.report import read_junit

from ..conftest import REPO
from .conftest import Converged, lab_exec, nodeport_lb

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

CONFIG = "/etc/haproxy/haproxy.cfg"
SAVED = "/root/haproxy.cfg.before-test"
SERVICE = "default/python-lb"


def verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nodeport_lb", "verify", "-i", "inventories/lab", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def verified_again(timeout: float = 30) -> None:
    """The restored lab passes again (HAProxy needs rise × inter to bring a node back)."""
    deadline = time.monotonic() + timeout
    while (result := verify()).returncode != 0:
        assert time.monotonic() < deadline, result.stdout
        time.sleep(1)


def lab_state() -> dict:
    return json.loads(nodeport_lb("lab", "status", "--json").stdout)


def live_hcnp() -> int:
    service = ManifestStore(STORE_DIR).get("Service", "default", "python-lb")
    assert service is not None
    return int(service["spec"]["healthCheckNodePort"])


@contextmanager
def haproxy_cfg_edited(lb: str, sed: str) -> Iterator[None]:
    lab_exec(lb, f"cp -p {CONFIG} {SAVED} && sed -i {sed} {CONFIG} && systemctl reload haproxy")
    try:
        yield
    finally:
        lab_exec(lb, f"cp -p {SAVED} {CONFIG} && rm -f {SAVED} && systemctl reload haproxy")


def test_verify_passes_on_the_converged_lab(converged: Converged, tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    began = time.monotonic()
    result = verify("--junit-xml", str(junit))
    seconds = time.monotonic() - began
    converged.measured["verify_s"] = round(seconds, 1)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout.splitlines()[-1]
    outcome = read_junit(junit)
    assert outcome.tests >= 15 and outcome.failures == [] and outcome.skipped == 0


def test_a_local_backend_with_a_tcp_check_is_named(converged: Converged) -> None:
    with haproxy_cfg_edited("lb1", "'/option httpchk/d; /http-check expect/d'"):
        result = verify()
    assert result.returncode == 1
    hcnp = live_hcnp()
    assert (
        f"lb1: backend {SERVICE} checks node1 with TCP on {hcnp} — an eTP Local Service needs "
        "an HTTP check" in result.stdout
    ), result.stdout
    assert "lb2:" not in result.stdout
    verified_again()


def test_haproxy_on_an_old_hcnp_is_named(converged: Converged) -> None:
    hcnp = live_hcnp()
    old = hcnp - 1 if hcnp > 30000 else hcnp + 1  # any port that is not the live one
    with haproxy_cfg_edited("lb2", f"'s/check port {hcnp}/check port {old}/'"):
        result = verify()
    assert result.returncode == 1
    assert (
        f"lb2: backend {SERVICE} checks node2 on port {old} — expected the Service's live "
        f"healthCheckNodePort {hcnp}" in result.stdout
    ), result.stdout
    verified_again()


def test_both_lbs_holding_the_vip_is_named(converged: Converged) -> None:
    vip = lab_state()["vips"][0]
    lab_exec("lb2", f"ip addr add {vip}/32 dev eth0")
    try:
        result = verify()
    finally:
        lab_exec("lb2", f"ip addr del {vip}/32 dev eth0", check=False)
    assert result.returncode == 1
    assert (
        f"lb1, lb2: VIP {vip} — expected on exactly one load balancer, found on lb1 and lb2"
        in result.stdout
    ), result.stdout
    verified_again()


def test_the_agent_stopped_on_the_pods_node_is_named(converged: Converged) -> None:
    (pod,) = [p for p in lab_state()["pods"] if "python-lb" in p["service"].split(",")]
    node = pod["node"]
    lab_exec(node, "systemctl stop nodeport-lb-agent")
    try:
        time.sleep(2.5)  # HAProxy's inter 1s × fall 2: the node is DOWN on both LBs now
        result = verify()
    finally:
        lab_exec(node, "systemctl start nodeport-lb-agent", check=False)
    print(result.stdout)
    assert result.returncode == 1
    for line in (
        f"{node}: nodeport-lb-agent.service — expected running and enabled, found not running",
        f"{node}: hcnp {live_hcnp()} of Service {SERVICE} — expected 200 with localEndpoints 1",
        f"lb1: backend {SERVICE} has {node} DOWN",
        f"lb2: backend {SERVICE} has {node} DOWN",
    ):
        assert line in result.stdout, result.stdout
    verified_again()


def restore_tproxy(lb: str) -> None:
    """The unit's reload puts the rule back (its script adds what is missing). systemd in a
    container sometimes refuses one (seen once in CI: the rule stayed missing); then once more,
    as reload-or-restart, and a failure of that says what systemd said."""
    first = lab_exec(lb, "systemctl reload nodeport-lb-tproxy", check=False)
    if first.returncode == 0:
        return
    time.sleep(2)
    second = lab_exec(lb, "systemctl reload-or-restart nodeport-lb-tproxy", check=False)
    status = lab_exec(
        lb, "systemctl status --no-pager -n 20 nodeport-lb-tproxy; true", check=False
    ).stdout
    said = f"reload: {first.stdout}{first.stderr}\nstatus:\n{status}"
    assert second.returncode == 0, f"{lb}: nodeport-lb-tproxy not restored\n{said}"
    warnings.warn(f"{lb}: nodeport-lb-tproxy's first reload failed\n{said}", stacklevel=2)


def test_a_missing_tproxy_rule_on_an_lb_is_named(converged: Converged) -> None:
    lab_exec("lb2", "ip -4 rule del priority 4200")
    try:
        result = verify()
    finally:
        restore_tproxy("lb2")
    assert result.returncode == 1
    assert (
        "lb2: policy rule — expected `fwmark 0x10000/0x10000 lookup 4200`, found none"
        in result.stdout
    ), result.stdout
    assert "lb1: policy rule" not in result.stdout
    verified_again()


def test_a_missing_return_route_on_a_node_is_named(converged: Converged) -> None:
    # the agent restores its routes every sync period: stop it first (its rules stay)
    lab_exec("node1", "systemctl stop nodeport-lb-agent && ip -4 route flush table 4202")
    try:
        result = verify()
    finally:
        lab_exec("node1", "systemctl start nodeport-lb-agent", check=False)
    assert result.returncode == 1
    assert (
        "node1: return path through lb2 (10.213.0.102, " in result.stdout
        and "— expected `default via 10.213.0.102` in table 4202, found an empty table"
        in result.stdout
    ), result.stdout
    verified_again()
