"""The agent refuses to compete with kube-proxy, and says why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.netns.conftest import _can_run
from tests.netns.netlib import agent_cmd, lab_session

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]


def test_refuses_to_start_next_to_kube_proxys_nftables_table(tmp_path: Path) -> None:
    reason = _can_run()
    if reason:
        pytest.skip(reason)
    store = tmp_path / "store"
    store.mkdir()
    with lab_session(tmp_path) as lab:
        node = lab.add_netns("kp")
        lab.run(node, "nft", "add", "table", "ip", "kube-proxy")
        cmd = ["ip", "netns", "exec", node, *agent_cmd("kp", store)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert "refusing to start: kube-proxy's nftables table is present" in proc.stderr
        assert "nodeport-lb" not in lab.run(node, "nft", "list", "tables").stdout
