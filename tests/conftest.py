"""Shared fixtures: paths of the checkout and a way to run the installed CLI."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def source_copy(directory: Path) -> Path:
    """A copy of the source tree to build from (scripts/build_collection.py's own): an
    in-tree build beside another one of the same checkout could mix their files."""
    spec = importlib.util.spec_from_file_location(
        "build_collection", REPO / "scripts" / "build_collection.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_copy(directory)


@pytest.fixture
def run_cli():
    """Run `nodeport-lb ARGS...` as a user would (a real process), returning the result."""

    def run(*args: str, stdin: str | None = None, check: bool = False):
        return subprocess.run(
            [sys.executable, "-m", "nodeport_lb", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            cwd=REPO,
            timeout=120,
        )

    return run
