"""Fixtures: a stand-in for the Kubernetes API server on 127.0.0.1 (see apiserver.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .apiserver import FakeApiServer

TOKEN = "s3cr3t-token"


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


@pytest.fixture
def secured_apiserver() -> Iterator[FakeApiServer]:
    """Answers only requests that carry ``Authorization: Bearer <TOKEN>``."""
    with FakeApiServer(token=TOKEN) as server:
        yield server
