"""Shared fixtures: paths of the checkout and a way to run the installed CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
