"""The nodeport_lb.core collection as an Ansible user gets it: `make collection`'s tarball,
installed with ansible-galaxy into a fresh path and used from a directory with no checkout
and no ansible.cfg (only the controller's Python package, as `pip install
'nodeport-lb[controller]'` gives it)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Installed:
    tarball: Path
    collections: Path  # the collections path it was installed into
    outside: Path  # a working directory with no checkout and no ansible.cfg

    def env(self) -> dict[str, str]:
        """This machine's environment without the checkout's Ansible settings."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("ANSIBLE_") or k in ("ANSIBLE_NOCOLOR",)
        }
        return {
            **env,
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_HOME": str(self.outside / ".ansible"),
        }

    def run(self, tool: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / tool), *args],
            cwd=self.outside,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def build_and_install(root: Path) -> Installed:
    """Build the collection into ``root`` and install it into ``root/collections``."""
    built = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_collection.py"), "--output-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = Path(built.stdout.strip().splitlines()[-1])
    outside = root / "elsewhere"
    outside.mkdir()
    collections = root / "collections"
    install = Installed(tarball, collections, outside)
    result = install.run(
        "ansible-galaxy", "collection", "install", "-p", str(collections), str(tarball)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return install
