import shutil
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.loadbalancer import PlanError
from nodeport_lb.node_proxy import agent_arguments
from nodeport_lb.templating import render_template


def render(executable: str = "/opt/nodeport-lb/venv/bin/nodeport-lb", **arguments) -> str:
    args = agent_arguments(
        node_name="node1", **{"manifests": "/etc/nodeport-lb/manifests", **arguments}
    )
    mode = arguments.get("mode", "standalone")
    return render_template(
        "nodeport-lb-agent.service.j2",
        agent={"executable": executable, "args": args, "mode": mode},
    )


def test_unit_runs_the_agent_with_the_contract_flags() -> None:
    unit = render(nodeport_addresses=["10.0.0.0/24"], agent_check_port=10258)
    assert (
        "/opt/nodeport-lb/venv/bin/nodeport-lb agent --mode standalone --node-name node1 "
        "--manifests /etc/nodeport-lb/manifests" in unit
    )
    assert "--nodeport-addresses 10.0.0.0/24" in unit
    assert "--agent-check-port 10258" in unit
    assert "--kubeconfig" not in unit
    assert "--kubeconfig /etc/k" in render(manifests="", kubeconfig="/etc/k")


def test_companion_unit_runs_beside_kube_proxy_without_its_port() -> None:
    unit = render(mode="companion")
    assert "agent --mode companion --node-name node1" in unit
    assert "--healthz-bind-address" not in unit  # kube-proxy holds :10256
    assert "Conflicts=kube-proxy.service" not in unit.splitlines()
    assert "After=network-online.target kube-proxy.service" in unit.splitlines()
    standalone = render()
    assert "--healthz-bind-address 0.0.0.0:10256" in standalone
    assert "Conflicts=kube-proxy.service" in standalone.splitlines()


def test_an_unknown_mode_is_refused_with_the_choices() -> None:
    with pytest.raises(PlanError, match="'sidecar' is not one of standalone, companion"):
        render(mode="sidecar")


def test_unit_is_hardened_and_leaves_rules_on_stop() -> None:
    unit = render()
    for line in (
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
        "KillMode=mixed",
    ):
        assert line in unit.splitlines()
    assert "ExecStop" not in unit  # nothing flushes the rules on stop


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    exe = tmp_path / "nodeport-lb"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "nodeport-lb-agent.service"
    unit.write_text(render(executable=str(exe)))
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    problems = [line for line in proc.stderr.splitlines() if "nodeport-lb-agent" in line]
    assert not problems, proc.stderr


def test_the_unit_waits_for_the_store_mount() -> None:
    assert "RequiresMountsFor=/etc/nodeport-lb/manifests" in render().splitlines()
    assert "RequiresMountsFor" not in render(manifests="", kubeconfig="/etc/k")
