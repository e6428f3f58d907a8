"""nodeport-lb doctor on the lab: the lab's python-lb with its one pod on node2 is named (all
ready endpoints on one node); with pods added on node1 and node3 it is not any more.

Runs first among the lab files (group "lab"); leaves the lab as it found it (the pods it adds
are removed; the Service it writes is the one test_lab_e2e writes, byte for byte).
"""

from __future__ import annotations

import json
import time

import pytest

from nodeport_lb.lab.lifecycle import STORE_DIR

from .conftest import Lab, nodeport_lb
from .test_lab_e2e import SERVICE, STORE

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]


def doctor() -> tuple[int, str, list[dict]]:
    text = nodeport_lb("doctor", "--manifests", str(STORE_DIR), check=False)
    as_json = nodeport_lb("doctor", "--manifests", str(STORE_DIR), "--json", check=False)
    return text.returncode, text.stdout, json.loads(as_json.stdout)["findings"]


def python_lb_checks(findings: list[dict]) -> list[str]:
    return [f["check"] for f in findings if f["object"] == "Service default/python-lb"]


def test_doctor_names_the_single_node_and_is_quiet_once_pods_spread(lab: Lab) -> None:
    STORE.write(SERVICE)
    (first,) = lab.status["pods"]
    assert first["node"] == "node2"
    deadline = time.monotonic() + 30
    while "single-node" not in python_lb_checks(doctor()[2]):  # the endpoint controller's sync
        assert time.monotonic() < deadline, doctor()
        time.sleep(0.5)
    code, before, findings = doctor()
    print(f"\n$ nodeport-lb doctor --manifests {STORE_DIR}   # one pod, on node2\n{before}")
    assert code == 1
    # other Services the lab runs (test-python) select the same pod and get their own finding
    [single] = [
        f
        for f in findings
        if f["check"] == "single-node" and f["object"] == "Service default/python-lb"
    ]
    assert "run on node2" in single["message"]
    assert single["patch"]["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]

    added = []
    try:
        for node in ("node1", "node3"):
            out = nodeport_lb("lab", "pod", "add", "--node", node, "--labels", "app=python")
            added.append(out.stdout.split()[0])
        lab.remember_namespaces()
        deadline = time.monotonic() + 30
        while python_lb_checks(doctor()[2]):
            assert time.monotonic() < deadline, doctor()
            time.sleep(0.5)
        code, after, findings = doctor()
        print(
            f"$ nodeport-lb doctor --manifests {STORE_DIR}   # pods on node1, node2, node3\n{after}"
        )
        assert python_lb_checks(findings) == []
    finally:
        for name in added:
            nodeport_lb("lab", "pod", "rm", name, "--grace", "0", check=False)
