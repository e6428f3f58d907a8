"""A transaction nft refuses never takes the other Services down: the full sync is bisected,
the refused Service keeps the rules it had, every other Service is applied.

The refused rules are made by hand here (the validation in front of the dataplane stops every
case known to reach nft); the dataplane and nft are the real ones, in a namespace of its own.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.netns.conftest import _can_run
from tests.support.netlib import lab_session, python_cmd

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

SCRIPT = r"""
import dataclasses, json, subprocess, sys
from nodeport_lb.agent.dataplane import Dataplane
from nodeport_lb.agent.rules import RuleConfig, compute_service_rules
from nodeport_lb.model import Service, apply_defaults

config = RuleConfig("node1")

def rules(name, node_port):
    manifest = {"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}}
    return compute_service_rules(Service.from_manifest(apply_defaults(manifest)), [], config)

def refused(good):
    broken = {"fw-broken": ("ip saddr 10.0.0.0/255.0.0.0 return",)}
    ports = tuple(dataclasses.replace(p, extra_chains=broken) for p in good.ports)
    return dataclasses.replace(good, ports=ports)

services = {r.key: r for r in (rules(f"web-{i}", 31100 + i) for i in range(8))}
dataplane = Dataplane(config)
dataplane.sync(services, None)  # web-3 works at first
services["default/web-3"] = refused(rules("web-3", 31103))
services["default/web-9"] = refused(rules("web-9", 31109))  # new and refused
services["default/web-5"] = rules("web-5", 31155)  # a real change next to them
mode = dataplane.sync(services, None)
table = subprocess.run(["nft", "list", "table", "inet", "nodeport-lb"],
                       capture_output=True, text=True, check=True).stdout
print(json.dumps({"mode": mode, "set_aside": sorted(dataplane.set_aside), "table": table}))
"""


def test_a_refused_service_is_set_aside_and_the_others_applied(tmp_path: Path) -> None:
    reason = _can_run()
    if reason:
        pytest.skip(reason)
    with lab_session(tmp_path) as lab:
        node = lab.add_netns("bisect")
        lab.run(node, "nft", "add", "table", "ip", "someone-elses")
        proc = subprocess.run(
            ["ip", "netns", "exec", node, *python_cmd("-c", SCRIPT)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        result = json.loads(proc.stdout)
        assert result["mode"] == "full"
        assert result["set_aside"] == ["default/web-3", "default/web-9"]
        table = result["table"]
        assert "31155" in table  # the change next to the refused ones was applied
        assert "31105" not in table
        assert "31103" in table  # web-3 keeps the rules it had
        assert "31109" not in table  # web-9 had none
        assert "someone-elses" in lab.run(node, "nft", "list", "tables").stdout
