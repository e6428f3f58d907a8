"""The opt-in strategy nodeport_lb.core.fast_linear: through Mitogen one interpreter on a
host serves every task of the run; without Mitogen the same play runs as plain linear and
says why it is slower."""

from __future__ import annotations

from pathlib import Path

import pytest

# A module's process is started by the interpreter that runs the module: with Mitogen that
# interpreter lives for the whole run, without it every task starts a new one.
PARENT_PID_TASKS = [
    {
        "name": f"parent {n}",
        "ansible.builtin.command": {"argv": ["sh", "-c", "echo $PPID"]},
        "register": f"parent_{n}",
        "changed_when": False,
    }
    for n in (1, 2)
]


def parent_pids(playbook, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    monkeypatch.setenv("ANSIBLE_STRATEGY", "nodeport_lb.core.fast_linear")
    run = playbook(PARENT_PID_TASKS)
    assert run.returncode == 0, run.output
    return [run.results[f"parent_{n}"]["stdout"] for n in (1, 2)], run.output


def test_with_mitogen_one_interpreter_runs_every_task(
    playbook, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ansible_mitogen", reason="the [controller] extra installs mitogen")
    (first, second), output = parent_pids(playbook, monkeypatch)
    assert first == second, output
    assert "runs as plain linear" not in output


def test_without_mitogen_it_is_plain_linear_and_says_so(
    playbook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A package of that name that fails to import, ahead of the real one on the path.
    shadow = tmp_path / "shadow" / "ansible_mitogen"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('mitogen hidden by the test')\n")
    monkeypatch.setenv("PYTHONPATH", str(shadow.parent))
    (first, second), output = parent_pids(playbook, monkeypatch)
    assert first != second, output
    assert "nodeport_lb.core.fast_linear runs as plain linear" in output
    assert "mitogen hidden by the test" in output
