"""Fixtures: a stand-in for the Kubernetes API server on 127.0.0.1 (see apiserver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .apiserver import FakeApiServer, Pki

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


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
def tls_apiserver(pki: Pki) -> Iterator[FakeApiServer]:
    """HTTPS with a certificate from ``pki``; a client certificate from ``pki`` is required."""
    with FakeApiServer(token=TOKEN, tls=pki.server_context()) as server:
        yield server
