#!/usr/bin/env python3
"""Build the nodeport_lb.core Ansible collection: dist/nodeport_lb-core-VERSION.tar.gz.

The collection's source is collections/ansible_collections/nodeport_lb/core, whose content
links back to the repository's modules/, plugins/, roles/, templates/ and site.yml. The build
copies it with the links resolved, stamps the package version (pyproject.toml is the one copy),
puts the agent's wheel into the node_proxy role (an installed collection has no source tree to
build it from, and this wheel is exactly the code its roles were written for), and runs
``ansible-galaxy collection build``.

    python scripts/build_collection.py [--output-dir dist]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "collections" / "ansible_collections" / "nodeport_lb" / "core"
# a fixed timestamp makes the wheel byte-for-byte reproducible
SOURCE_DATE_EPOCH = "315532800"
# what a wheel is not built from (and what must not be shared with another build)
NOT_SOURCE = (".git", ".venv", ".cache", "build", "dist", "*.egg-info", "__pycache__", "*.pyc")
NOT_SOURCE += (".pytest_cache", ".ruff_cache", ".mypy_cache", "collections", "inventories")


def source_copy(directory: Path) -> Path:
    """The source tree copied to ``directory`` (links kept, they point inside it). pip builds
    a local project in its own tree (build/): two builds of one checkout at once, say a test
    and site.yml, could mix their files, so a build here always works on its own copy."""
    copy = directory / "source"
    shutil.copytree(REPO, copy, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    return copy


def package_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def ansible_galaxy() -> str:
    beside = Path(sys.executable).with_name("ansible-galaxy")
    found = str(beside) if beside.exists() else shutil.which("ansible-galaxy")
    if not found:
        sys.exit("error: ansible-galaxy not found: pip install 'nodeport-lb[controller]'")
    return found


def stage(workdir: Path, version: str) -> Path:
    staged = workdir / "ansible_collections" / "nodeport_lb" / "core"
    shutil.copytree(
        SOURCE,
        staged,
        symlinks=False,  # the links to the repository's directories become their content
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"),
    )
    galaxy = staged / "galaxy.yml"
    text, count = re.subn(r"(?m)^version: .*$", f"version: {version}", galaxy.read_text())
    if count != 1:
        sys.exit(f"error: {SOURCE / 'galaxy.yml'} needs exactly one 'version:' line")
    galaxy.write_text(text)
    wheel_dir = staged / "roles" / "node_proxy" / "files"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"]
    subprocess.run(
        [*pip_wheel, "--wheel-dir", str(wheel_dir), str(source_copy(workdir))],
        check=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
    )
    return staged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    version = package_version()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="nodeport-lb-collection-") as workdir:
        staged = stage(Path(workdir), version)
        build = [ansible_galaxy(), "collection", "build", "--force"]
        subprocess.run(
            [*build, "--output-path", str(args.output_dir.resolve()), str(staged)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    built = args.output_dir / f"nodeport_lb-core-{version}.tar.gz"
    print(built)
    return 0


if __name__ == "__main__":
    sys.exit(main())
