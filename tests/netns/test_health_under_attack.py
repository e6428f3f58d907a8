"""The agent's HTTP and agent-check servers under a flood, slow or malformed clients, and a
port taken by someone else: the load balancer's check is still answered, and right.

The clients run in the client namespace; the LB's check is a plain HTTP GET on the hcnp.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import time

import pytest

from tests.netns import test_hostile_input as hostile
from tests.netns.conftest import SeedLab
from tests.netns.test_hostile_input import (
    agent_log,
    assert_still_serving,
    hcnp,
    log_size,
    wait_for_log,
)
from tests.support.netlib import http_get, in_netns, python_cmd, wait_for
from tests.support.seed import ADDRESSES, HCNP, PODS

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

seed = hostile.seed  # the same lab (agents on two nodes, a pod, a sentinel table), its own copy
NODE2 = ADDRESSES["node2"]
POD_A_GATEWAY = PODS["pod-a"][2]
# systemd's default for a service: 1024 open files (soft), 524288 (hard)
SYSTEMD_DEFAULT_NOFILE = ("prlimit", "--nofile=1024:20000", "--")


def _restart(seed: SeedLab, node: str, *extra: str, prefix: tuple[str, ...] = ()) -> None:
    seed.lab.stop(seed.agents[node], signal.SIGTERM)
    previous = seed.extra_agent_args
    seed.extra_agent_args = extra
    try:
        seed.start_agent(node, prefix=prefix)
    finally:
        seed.extra_agent_args = previous
    wait_for(lambda: hcnp(seed, node)[0] in (200, 503))  # its first sync opened the hcnp


def _raw(netns: str, host: str, port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    """Send ``payload``, half-close, read until the server closes."""

    def talk() -> bytes:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            # the server may close before it has read everything (that is the point of a
            # length limit): a reset while sending or reading ends the exchange
            with contextlib.suppress(OSError):
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            data = b""
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    data += chunk
            return data

    return in_netns(netns, talk)


def test_thousands_of_idle_connections_do_not_keep_the_lb_check_out(seed: SeedLab) -> None:
    if not shutil.which("prlimit"):
        pytest.skip("needs prlimit")
    _restart(seed, "node2", prefix=SYSTEMD_DEFAULT_NOFILE)
    wait_for(lambda: hcnp(seed, "node2")[0] == 200)

    def flood_then_check() -> tuple[int, int]:
        idle: list[socket.socket] = []
        try:
            failures = 0
            for _ in range(3000):
                try:
                    idle.append(socket.create_connection((NODE2, HCNP), timeout=0.3))
                    failures = 0
                except OSError:
                    failures += 1
                    if failures > 20:
                        break
            status = -1
            with (
                contextlib.suppress(OSError),
                socket.create_connection((NODE2, HCNP), timeout=3) as check,
            ):
                check.sendall(b"GET /healthz HTTP/1.1\r\nHost: lb\r\n\r\n")
                status = int(check.recv(4096).split(b" ")[1])
            return len(idle), status
        finally:
            for sock in idle:
                sock.close()

    opened, status = in_netns(seed.ns("client"), flood_then_check)
    assert status == 200
    assert opened > 1024  # more than the agent's default file limit
    assert_still_serving(seed)


def test_a_request_body_that_never_comes_is_cut_off(seed: SeedLab) -> None:
    def stall() -> bytes:
        with socket.create_connection((NODE2, HCNP), timeout=20) as sock:
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(4096):  # the server must end it
                data += chunk
            assert time.monotonic() - started < 20
            return data

    assert in_netns(seed.ns("client"), stall) == b""
    assert_still_serving(seed)


def test_a_chunked_body_is_one_request_not_two(seed: SeedLab) -> None:
    """A request hidden in a chunked body must not be answered as a request of its own."""
    hidden = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw(
        seed.ns("client"),
        NODE2,
        HCNP,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(hidden):x}\r\n".encode()
        + hidden
        + b"\r\n0\r\n\r\n",
    )
    assert answer.count(b"HTTP/1.1 ") == 1
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert_still_serving(seed)


def test_a_malformed_request_gets_400_without_a_traceback(seed: SeedLab) -> None:
    mark = log_size(seed, "node2")
    answer = _raw(seed.ns("client"), NODE2, HCNP, b"\x00\x01 garbage \xff\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert "Traceback" not in agent_log(seed, "node2")[mark:]
    assert_still_serving(seed)


def test_over_long_agent_check_lines_are_refused_quietly(seed: SeedLab) -> None:
    mark = log_size(seed, "node2")
    for _ in range(20):
        _raw(seed.ns("client"), NODE2, 10258, b"x" * 100_000)
    reply = _raw(seed.ns("client"), NODE2, 10258, b"default/python-lb\n")
    assert reply == b"up 100%\n"
    assert "Traceback" not in agent_log(seed, "node2")[mark:]
    assert_still_serving(seed)


def test_hcnp_listens_only_on_the_nodeport_addresses(seed: SeedLab) -> None:
    _restart(seed, "node2", "--nodeport-addresses", "10.77.0.0/24")
    try:
        wait_for(lambda: hcnp(seed, "node2")[0] == 200)
        pod = seed.ns("pod-a")  # the pod reaches its node on the pod network's gateway
        with pytest.raises(ConnectionRefusedError):
            http_get(pod, POD_A_GATEWAY, HCNP)
    finally:
        _restart(seed, "node2")
    assert_still_serving(seed)


def test_a_port_taken_by_another_process_is_bound_once_it_is_free(seed: SeedLab) -> None:
    seed.lab.stop(seed.agents["node2"], signal.SIGTERM)
    squatter = seed.lab.start(
        seed.ns("node2"),
        *python_cmd("-m", "http.server", str(HCNP), "--bind", "0.0.0.0"),
        log_name="squatter.log",
    )
    try:
        wait_for(lambda: hcnp(seed, "node2")[0] == 200)  # the squatter answers
        mark = log_size(seed, "node2")
        seed.start_agent("node2")
        wait_for_log(seed, "node2", f"cannot listen on healthCheckNodePort {HCNP}", mark)
    finally:
        seed.lab.stop(squatter, signal.SIGTERM)
    # the agent takes the port over by itself, without any change to the Service
    wait_for(lambda: b"localEndpoints" in hcnp(seed, "node2")[2], timeout=35)
    assert_still_serving(seed)
