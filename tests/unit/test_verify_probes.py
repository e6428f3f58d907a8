"""verify's probes never run what the control plane or an inventory says as shell."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import testinfra

from nodeport_lb.verify.probes import Target, http_get, tcp_connects


@pytest.fixture
def local() -> Target:
    return Target("local", testinfra.get_host("local://"), "127.0.0.1")


def test_tcp_connects_finds_an_open_loopback_port(local: Target) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert tcp_connects(local, [("127.0.0.1", port)]) == {("127.0.0.1", port)}


@pytest.mark.parametrize(
    "destination",
    [
        ("127.0.0.1", "1; touch {marker}"),  # a store Service's nodePort
        ("127.0.0.1; touch {marker}", 80),  # an inventory's address
        ("127.0.0.1", True),
        ("127.0.0.1", 70000),
    ],
)
def test_a_hostile_destination_is_refused_and_never_run(
    local: Target, tmp_path: Path, destination: tuple
) -> None:
    marker = tmp_path / "pwned"
    address, port = destination
    if isinstance(address, str):
        address = address.format(marker=marker)
    if isinstance(port, str):
        port = port.format(marker=marker)
    with pytest.raises(ValueError):
        tcp_connects(local, [(address, port)])
    with pytest.raises(ValueError):
        http_get(local, address, port)
    assert not marker.exists()
