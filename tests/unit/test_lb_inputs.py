"""What the haproxy and keepalived roles are given (nodeport_lb_haproxy_services, the
nodeport_lb_haproxy_* and nodeport_lb_keepalived_* variables) is validated with the planner's
rules before anything is rendered: nothing can add a line or a section to haproxy.cfg."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.loadbalancer import PlanError, plan_haproxy, plan_keepalived
from nodeport_lb.templating import render_template
from tests.lb.conftest import LBS, NODES, VIPS, lb_facts, service

INJECTED = "\nlisten injected\n    bind :9999\n    server evil 127.0.0.1:22\n"


def render(plan) -> str:
    return render_template("haproxy.cfg.j2", plan=plan.to_dict())


@pytest.mark.parametrize(
    "changes",
    [
        {"name": "python-lb" + INJECTED},
        {"namespace": "default" + INJECTED},
        {"type": "LoadBalancer" + INJECTED},
        {"health_check_node_port": "31897" + INJECTED},
        {"ports": [{"name": "http" + INJECTED, "port": 80, "node_port": 31001}]},
        {"ports": [{"name": "http", "port": 80, "node_port": 31001, "protocol": "TCP" + INJECTED}]},
    ],
    ids=["name", "namespace", "type", "hcnp", "port-name", "protocol"],
)
def test_a_service_input_cannot_inject_a_section(changes: dict) -> None:
    with pytest.raises(PlanError):
        render(plan_haproxy([service(**changes)], NODES, VIPS))


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("stats_socket", "/run/haproxy/admin.sock mode 666 level admin"),
        ("stats_socket", "/run/haproxy/admin.sock" + INJECTED),
        ("log", "/dev/log local0" + INJECTED),
        ("chroot", "/var/lib/haproxy" + INJECTED),
        ("inter", "1s\n"),
        ("timeout_client", "1m" + INJECTED),
    ],
)
def test_a_haproxy_setting_cannot_inject_a_line(setting: str, value: str) -> None:
    with pytest.raises(PlanError, match=f"nodeport_lb_haproxy_{setting}"):
        plan_haproxy([service()], NODES, VIPS, {setting: value})


def test_valid_inputs_still_render_a_config_haproxy_accepts(tmp_path: Path) -> None:
    if not shutil.which("haproxy"):
        pytest.skip("needs haproxy")
    config = tmp_path / "haproxy.cfg"
    text = render(plan_haproxy([service()], NODES, VIPS, {"chroot": str(tmp_path)}))
    config.write_text(text.replace("/run/haproxy/admin.sock", str(tmp_path / "admin.sock")))
    proc = subprocess.run(["haproxy", "-c", "-f", str(config)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "\nlisten " not in text


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("haproxy_pidfile", "/run/haproxy.pid; rm -rf /"),
        ("haproxy_pidfile", "$(reboot)"),
        ("check_script", '/etc/keepalived/check.sh"\n}\nvrrp_script evil {'),
        ("notify_script", "/etc/keepalived/notify.sh 2>&1"),
        ("auth_pass", "ab!cdefg"),  # '!' starts a keepalived comment: a silently short secret
        ("auth_pass", 'ab"c'),
    ],
)
def test_a_keepalived_setting_cannot_reach_a_script_or_the_config(setting: str, value: str) -> None:
    settings = {setting: value}
    if setting == "auth_pass":
        settings |= {"vrrp_version": 2, "advert_int": 1}
    with pytest.raises(PlanError, match=f"nodeport_lb_keepalived_{setting}"):
        plan_keepalived(VIPS, "lb1", LBS, lb_facts("10.213.0.101"), settings)


def test_vrrp_adverts_are_unicast_and_source_checked_by_default() -> None:
    plan = plan_keepalived(VIPS, "lb1", LBS, lb_facts("10.213.0.101"))
    text = render_template("keepalived.conf.j2", plan=plan.to_dict())
    assert "unicast_peer {\n        10.213.0.102\n    }" in text
    assert "    check_unicast_src\n" in text
