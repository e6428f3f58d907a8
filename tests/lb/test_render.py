"""The one copy of haproxy.cfg / keepalived.conf, rendered from plans, passes the daemons' own
checks (haproxy -c, keepalived -t) — the same commands the roles use as `validate:`."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeport_lb.loadbalancer import plan_haproxy, plan_keepalived
from nodeport_lb.templating import render_template
from tests.lb.conftest import LBS, NODES, VIPS, lb_facts, service

needs_haproxy = pytest.mark.skipif(not shutil.which("haproxy"), reason="haproxy not installed")


def haproxy_check(text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)


@needs_haproxy
def test_rendered_haproxy_cfg_is_valid(tmp_path: Path) -> None:
    services = [
        service(),
        service(
            name="web",
            external_traffic_policy="Cluster",
            health_check_node_port=0,
            load_balancer={"mode": "http", "vip": "10.213.0.241"},
        ),
    ]
    plan = plan_haproxy(services, NODES, [*VIPS, "10.213.0.241"], {"maxconn": 1000})
    text = render_template("haproxy.cfg.j2", plan=plan.to_dict())
    result = haproxy_check(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stats socket /run/haproxy/admin.sock mode 600 level admin" in text
    assert "log /dev/log local0" in text
    assert "check-send-proxy" not in text
    assert text.count("send-proxy-v2") == len(NODES)  # python-lb's servers only
    assert "bind 10.213.0.241:80" in text and "option forwardfor" in text
    # the command catches a broken file, so `validate:` keeps it from landing
    assert haproxy_check(text.replace("balance source", "balance nonsense"), tmp_path).returncode


@pytest.fixture
def netns_with_interface() -> Iterator[str]:
    """keepalived -t checks that the VRRP interface exists: give it one in a test netns."""
    name = f"nplbr-{os.getpid()}-kt"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)
    try:
        subprocess.run(
            ["ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"],
            check=True,
            timeout=30,
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


@pytest.mark.netns
@pytest.mark.xdist_group("netns")
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("keepalived"), reason="needs root and keepalived"
)
@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"vrrp_version": 2, "advert_int": 1, "auth_pass": "s3cret", "unicast": True},
        {"nopreempt": True, "unicast": True},
    ],
)
def test_rendered_keepalived_conf_is_valid(
    settings: dict, netns_with_interface: str, tmp_path: Path
) -> None:
    # Scripts must exist, root-owned and in a directory only root can write (script security).
    scripts = tmp_path / "scripts"
    scripts.mkdir(mode=0o755)
    tmp_path.chmod(0o755)
    for name, template in [
        ("check.sh", "keepalived-check-haproxy.sh.j2"),
        ("notify.sh", "keepalived-notify.sh.j2"),
    ]:
        (scripts / name).write_text(render_template(template, pidfile="/run/haproxy.pid"))
        (scripts / name).chmod(0o755)
    plan = plan_keepalived(
        ["10.213.0.240", "10.213.0.241"],
        "lb2",
        LBS,
        lb_facts("10.213.0.102"),
        {
            **settings,
            "check_script": str(scripts / "check.sh"),
            "notify_script": str(scripts / "notify.sh"),
        },
    )
    text = render_template("keepalived.conf.j2", plan=plan.to_dict())
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    command = ["ip", "netns", "exec", netns_with_interface, "keepalived", "-t", "-f", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr + text
    assert "priority 140" in text
    assert text.count("track_script {") == 2
    if settings.get("unicast", True):
        assert "unicast_peer {\n        10.213.0.101\n    }" in text
        assert "    check_unicast_src\n" in text
    if settings.get("nopreempt"):
        assert "nopreempt" in text
    path.write_text(text.replace("advert_int", "advert_interval"))
    assert subprocess.run(command, capture_output=True, timeout=30).returncode


@needs_haproxy
def test_transparent_config_and_the_tproxy_files_pass_their_checks(tmp_path: Path) -> None:
    plan = plan_haproxy([service(load_balancer={})], NODES, VIPS, {"maxconn": 1000}).to_dict()
    text = render_template("haproxy.cfg.j2", plan=plan)
    assert haproxy_check(text, tmp_path).returncode == 0
    assert text.count("source 0.0.0.0 usesrc clientip") == 1  # one backend
    # HAProxy refuses a `user` line with usesrc: systemd sets the user instead
    assert not [line for line in text.splitlines() if line.strip().startswith(("user ", "group "))]
    nft_file = tmp_path / "tproxy.nft"
    nft_file.write_text(render_template("nodeport-lb-tproxy.nft.j2", tproxy=plan["tproxy"]))
    if os.geteuid() == 0 and shutil.which("nft"):
        check = subprocess.run(["nft", "-c", "-f", str(nft_file)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    script = render_template("nodeport-lb-tproxy.sh.j2", tproxy=plan["tproxy"], nft_file=nft_file)
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    assert 'lookup "$TABLE" priority "$PRIORITY"' in script and "TABLE=4200" in script
    drop_in = render_template(
        "haproxy-nodeport-lb.conf.j2", user="haproxy", group="haproxy", pidfile="/run/haproxy/x.pid"
    )
    assert "User=haproxy" in drop_in and "CAP_NET_RAW" in drop_in and "CAP_SYS_ADMIN" not in drop_in
