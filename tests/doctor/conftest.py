from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nodeport_lb.cli import main

from .objects import write_store


@dataclass
class DoctorRun:
    code: int
    out: str
    err: str

    @property
    def findings(self) -> list[dict[str, Any]]:
        return json.loads(self.out)["findings"]

    def checks(self) -> list[tuple[str, str]]:
        return [(f["object"], f["check"]) for f in self.findings]


@pytest.fixture
def doctor(capsys: pytest.CaptureFixture[str]) -> Callable[..., DoctorRun]:
    """`nodeport-lb doctor ARGS...` in this process, as a user runs it."""

    def run(*args: str) -> DoctorRun:
        code = main(["doctor", *args])
        captured = capsys.readouterr()
        return DoctorRun(code, captured.out, captured.err)

    return run


@pytest.fixture
def store(tmp_path: Path) -> Callable[[list[dict[str, Any]]], Path]:
    def make(objects: list[dict[str, Any]], name: str = "store") -> Path:
        return write_store(tmp_path / name, objects)

    return make
