"""site.yml's Services play on its own: the example's two Services into a manifest store named by
an inventory variable; the hcnp comes back; a second run changes nothing; each role's tag runs
that role alone; ansible-lint is clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
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


ROLE_TAGS = ("services", "node_proxy", "haproxy", "keepalived", "verify")
FACTS_TASK = "Gather the network facts (and Python and CPU) of every host at once"


def tasks_for(tag: str) -> dict[str, list[str]]:
    """site.yml's tasks `--tags TAG` would run, by role ("" for a play's own tasks), without
    the role argument checks that always run."""
    run = run_playbook(
        REPO / "site.yml", "-i", "inventories/example", "--list-tasks", "--tags", tag
    )
    assert run.returncode == 0, run.output
    tasks: dict[str, list[str]] = {}
    for line in run.output.splitlines():
        task = re.match(r"^ {6}(?:(nodeport_lb\.core\.\w+) : )?(.+?)\tTAGS: ", line)
        if task and "Validating arguments against arg spec" not in task[2]:
            tasks.setdefault(task[1] or "", []).append(task[2])
    return tasks


@pytest.mark.parametrize("tag", ROLE_TAGS)
def test_a_roles_tag_runs_that_role_alone(tag: str) -> None:
    tasks = tasks_for(tag)
    if tag == "verify":
        assert set(tasks) == {""} and "Run nodeport-lb verify on this inventory" in tasks[""]
        return
    role = f"nodeport_lb.core.{tag}"
    assert len(tasks.get(role, [])) >= 3, tasks
    if tag != "services":
        # the roles on hosts share one gathering of facts, which runs for each of them
        assert tasks[""][0] == FACTS_TASK, tasks
        tasks[""].remove(FACTS_TASK)
        if not tasks[""]:
            del tasks[""]
    # the roles on hosts install their Debian packages themselves, under their tag
    others = set(tasks) - {role}
    if tag != "services":
        assert any(task.startswith("Install what ") for task in tasks[role]), tasks
    if tag == "haproxy":
        # HAProxy's plan needs the Services' ports: they are read (validated in check mode)
        # and published, never applied
        assert others == {"nodeport_lb.core.services"}, tasks
        assert tasks["nodeport_lb.core.services"] == [
            "Services ({{ nodeport_lb_services_pass }})",
            "Keep what the validation found",
            "Publish the allocated nodePorts and healthCheckNodePorts",
        ]
    elif tag == "keepalived":
        # its plan, checked before HAProxy's configuration changes
        assert tasks.get("") == [
            "Validate the keepalived settings before any load balancer changes"
        ]
        assert others == {""}, tasks
    else:
        assert others == set(), tasks


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
