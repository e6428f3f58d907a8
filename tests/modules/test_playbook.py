"""site.yml's Services play on its own: the example's two Services into a manifest store named by
an inventory variable; the hcnp comes back; a second run changes nothing; ansible-lint is clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.modules.conftest import REPO, run_playbook, store_snapshot


def test_site_yml_applies_the_seed_services_idempotently(tmp_path: Path) -> None:
    store = tmp_path / "store"
    extra = {"nodeport_lb_store": {"path": str(store)}}
    first = run_playbook(REPO / "site.yml", "--tags", "services", extra_vars=extra)
    assert first.returncode == 0, first.output
    assert first.recap("changed") >= 1
    python_lb = yaml.safe_load((store / "service_default_python-lb.yaml").read_text())
    hcnp = python_lb["spec"]["healthCheckNodePort"]
    assert 30000 <= hcnp <= 32767
    assert python_lb["spec"]["ports"][0]["nodePort"] == 31001
    assert f"nodePorts {{'http': 31001}}, hcnp {hcnp}" in first.output
    test_python = yaml.safe_load((store / "service_default_test-python.yaml").read_text())
    assert test_python["spec"]["externalTrafficPolicy"] == "Local"
    assert test_python["spec"]["ports"][0]["nodePort"] == 31000

    snapshot = store_snapshot(store)
    second = run_playbook(REPO / "site.yml", "--tags", "services", extra_vars=extra)
    assert second.returncode == 0, second.output
    assert second.recap("changed") == 0
    assert store_snapshot(store) == snapshot


def test_bad_service_variable_fails_before_anything_is_written(tmp_path: Path) -> None:
    store = tmp_path / "store"
    services = [
        {"name": "good", "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
        {"name": "Bad_Name", "type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]},
    ]
    run = run_playbook(
        REPO / "site.yml",
        "--tags",
        "services",
        extra_vars={"nodeport_lb_store": {"path": str(store)}, "nodeport_lb_services": services},
    )
    assert run.returncode != 0
    assert 'metadata.name: Invalid value: "Bad_Name": a DNS-1035 label' in run.output
    assert not store.exists() or store_snapshot(store) == {}  # not even the good one


def test_ansible_lint_is_clean() -> None:
    lint = Path(sys.executable).parent / "ansible-lint"
    proc = subprocess.run(
        [str(lint), "--offline", "site.yml", "roles"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
