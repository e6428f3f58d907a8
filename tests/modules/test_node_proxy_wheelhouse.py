"""The node_proxy role's controller side for real: the wheelhouse a node without internet
installs from holds nodeport-lb (rebuilt byte for byte the same, so an unchanged tree does not
restart agents) and only the agent's runtime dependencies (no ansible-core)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from tests.conftest import source_copy
from tests.modules.conftest import run_playbook


def test_wheelhouse_is_small_and_reproducible(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wh"
    play = [
        {
            "name": "wheelhouse",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": True,
            "vars": {
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "nodeport_lb_node_proxy_wheelhouse": str(wheelhouse),
                # its own copy: a build in the checkout could meet site.yml's on the lab
                "nodeport_lb_node_proxy_project_dir": str(source_copy(tmp_path)),
            },
            "tasks": [
                {
                    "ansible.builtin.include_role": {
                        "name": "node_proxy",
                        "tasks_from": "wheelhouse.yml",
                    }
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    first = run_playbook(path)
    assert first.returncode == 0, first.output
    names = sorted(p.name.split("-")[0].lower() for p in wheelhouse.glob("*.whl"))
    assert names == ["h11", "jinja2", "markupsafe", "nodeport_lb", "prometheus_client", "pyyaml"]
    (wheel,) = wheelhouse.glob("nodeport_lb-*-py3-none-any.whl")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    second = run_playbook(path)
    assert second.returncode == 0, second.output
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == digest
