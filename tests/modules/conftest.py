"""Run real `ansible-playbook` on localhost (controller) against a throw-away manifest store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@dataclass
class PlaybookRun:
    returncode: int
    output: str
    results: dict[str, Any]  # what the playbook saved with the `save` task

    def recap(self, field: str) -> int:
        match = re.search(rf"localhost\s*:.*\b{field}=(\d+)", self.output)
        assert match, self.output
        return int(match[1])


@pytest.fixture
def playbook(tmp_path: Path):
    """Run a list of tasks on localhost, the way users run the modules (with the controller's
    Python). Each task's registered result is saved to a JSON file and returned."""

    def run(
        tasks: list[dict[str, Any]],
        *args: str,
        extra_vars: dict | None = None,
        netns: str | None = None,
    ) -> PlaybookRun:
        out = tmp_path / "results.json"
        out.unlink(missing_ok=True)
        names = [t["register"] for t in tasks if "register" in t]
        play = [
            {
                "name": "test",
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
                "tasks": [
                    *tasks,
                    {
                        "name": "save",
                        "ansible.builtin.copy": {
                            "dest": str(out),
                            "content": "{{ {"
                            + ", ".join(f"'{n}': {n} | default(None)" for n in names)
                            + "} | to_json }}",
                        },
                        "check_mode": False,
                        "diff": False,
                        "changed_when": False,
                    },
                ],
            }
        ]
        path = tmp_path / "play.yml"
        path.write_text(yaml.safe_dump(play, sort_keys=False))
        return run_playbook(path, *args, extra_vars=extra_vars, results_file=out, netns=netns)

    return run


def run_playbook(
    path: Path,
    *args: str,
    extra_vars: dict | None = None,
    results_file: Path | None = None,
    netns: str | None = None,
) -> PlaybookRun:
    """ansible-playbook in the checkout; inside the network namespace `netns` when given (for
    tasks that change per-namespace kernel settings)."""
    inside = ["ip", "netns", "exec", netns] if netns else []
    command = [*inside, str(ANSIBLE_PLAYBOOK), str(path), *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    proc = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    results = {}
    if results_file and results_file.exists():
        results = json.loads(results_file.read_text())
    return PlaybookRun(proc.returncode, proc.stdout + proc.stderr, results)


def store_snapshot(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(store.iterdir()) if p.suffix == ".yaml"}
