"""The opt-in strategy nodeport_lb.core.fast_linear: through Mitogen one interpreter on a
host serves every task of the run; without Mitogen the same play runs as plain linear and
says why it is slower."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.modules.conftest import run_playbook

# A module's process is started by the interpreter that runs the module: with Mitogen that
# interpreter lives for the whole run, without it every task starts a new one.
PARENT_PIDS_PLAY = [
    {
        "name": "two tasks, each printing the PID of the process that ran its command",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "tasks": [
            {
                "name": f"parent {n}",
                "ansible.builtin.command": {"argv": ["sh", "-c", "echo parent=$PPID"]},
                "register": f"parent_{n}",
                "changed_when": False,
            }
            for n in (1, 2)
        ]
        + [{"ansible.builtin.debug": {"msg": "{{ parent_1.stdout }} {{ parent_2.stdout }}"}}],
    }
]


def parent_pids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.setenv("ANSIBLE_STRATEGY", "nodeport_lb.core.fast_linear")
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(PARENT_PIDS_PLAY, sort_keys=False))
    run = run_playbook(path)
    assert run.returncode == 0, run.output
    assert run.recap("ok") == 3
    debug = next(line for line in run.output.splitlines() if '"msg": "parent=' in line)
    return [word.removeprefix("parent=") for word in debug.split('"')[3].split()], run.output


def test_with_mitogen_one_interpreter_runs_every_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ansible_mitogen", reason="the [controller] extra installs mitogen")
    (first, second), output = parent_pids(tmp_path, monkeypatch)
    assert first == second, output
    assert "runs as plain linear" not in output


def test_without_mitogen_it_is_plain_linear_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package of that name that fails to import, ahead of the real one on the path.
    shadow = tmp_path / "shadow" / "ansible_mitogen"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('mitogen hidden by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    (first, second), output = parent_pids(tmp_path, monkeypatch)
    assert first != second, output
    assert "nodeport_lb.core.fast_linear runs as plain linear" in output
    assert "mitogen hidden by the test" in output
