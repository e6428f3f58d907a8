"""nodeport_lb.core.nodeport_packages on this machine (Debian, over a local connection): what
dpkg has is no change and no apt run; names that are not package names never reach a shell."""

from __future__ import annotations

from pathlib import Path

import pytest

if not Path("/usr/bin/dpkg-query").exists():
    pytest.skip("no dpkg here", allow_module_level=True)


def packages(**args: object) -> dict[str, object]:
    return {"nodeport_lb.core.nodeport_packages": args, "register": "result"}


def test_a_host_that_has_them_all_changes_nothing(playbook) -> None:
    run = playbook([packages(names=["dpkg", "coreutils"], needed_by="the test")])
    assert run.returncode == 0, run.output
    assert run.results["result"]["changed"] is False
    assert run.results["result"]["missing"] == []
    assert run.results["result"]["pending"] is False


def test_check_mode_has_nothing_pending_when_nothing_is_missing(playbook) -> None:
    run = playbook([packages(names=["dpkg"])], "--check")
    assert run.returncode == 0, run.output
    assert run.results["result"]["pending"] is False
    assert run.recap("changed") == 0


def test_install_false_asks_nothing(playbook) -> None:
    run = playbook([packages(names=["nplb-none"], install=False)])
    assert run.returncode == 0, run.output
    assert run.results["result"]["missing"] == []
    assert run.results["result"]["changed"] is False


def test_a_name_that_is_no_package_name_fails_before_any_command(playbook, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    run = playbook([packages(names=["dpkg", f"x; touch {marker}"])])
    assert run.returncode != 0
    assert "is not a Debian package name" in run.output
    assert not marker.exists()
