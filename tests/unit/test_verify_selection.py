"""`nodeport-lb verify` and its testinfra suite as users call them: --hosts narrows the hosts
without dropping the end-to-end checks, and no inventory, or one that cannot be read, is an
immediate, plain error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from nodeport_lb.verify.cli import SUITE

INVENTORY = {
    "all": {
        "vars": {"nodeport_lb_vips": ["10.213.0.241"], "nodeport_lb_store": {"path": "/nowhere"}},
        "children": {
            "nodes": {"hosts": {"node1": {"ansible_host": "10.213.0.11"}}},
            "lbs": {"hosts": {"lb1": {"ansible_host": "10.213.0.21"}}},
            "clients": {"hosts": {"client1": {"ansible_host": "10.213.0.31"}}},
        },
    }
}


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return {**env, "HOME": str(home)}


def run_in(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """A command as a user outside the checkout runs it: from tmp_path, no ANSIBLE_* settings."""
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def collected(tmp_path: Path, *args: str) -> list[str]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(INVENTORY))
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"]
    suite = ["-c", str(SUITE / "pytest.ini"), "--rootdir", str(SUITE)]
    result = run_in(
        tmp_path, *pytest, *suite, f"--ansible-inventory={inventory}", *args, str(SUITE)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if "::" in line]


def test_hosts_all_selects_every_check(tmp_path: Path) -> None:
    assert collected(tmp_path, "--hosts=ansible://all") == collected(tmp_path)


def test_hosts_naming_no_client_keeps_the_end_to_end_checks(tmp_path: Path) -> None:
    items = collected(tmp_path, "--hosts=ansible://lb1")
    end_to_end = [i for i in items if "end_to_end" in i]
    assert end_to_end and all(i.endswith("[client1]") for i in end_to_end), end_to_end
    assert not any("[node1]" in i for i in items)  # the narrowing itself still holds


def test_verify_outside_a_checkout_without_inventory_says_so(tmp_path: Path) -> None:
    result = run_in(tmp_path, sys.executable, "-m", "nodeport_lb", "verify")
    assert result.returncode == 2
    assert "no inventory found" in result.stderr and "-i INVENTORY" in result.stderr
    assert "Traceback" not in result.stderr


def test_verify_of_an_inventory_that_cannot_be_read_is_an_error(tmp_path: Path) -> None:
    """A mistyped -i or a broken file is no empty inventory whose checks all skip."""
    broken = tmp_path / "broken.yml"
    broken.write_text("all: [hosts\n")
    for inventory in (tmp_path / "missing.yml", broken):
        result = run_in(
            tmp_path, sys.executable, "-m", "nodeport_lb", "verify", "-i", str(inventory)
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "ansible-inventory failed" in result.stderr and str(inventory) in result.stderr
        assert "OK" not in result.stdout
