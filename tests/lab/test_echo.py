"""The echo backend: PROXY header parsing, and the real server on loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from nodeport_lb.lab import echo
from nodeport_lb.lab.echo import (
    NEED_MORE,
    NO_HEADER,
    ProxyHeaderError,
    ProxySource,
    build_proxy_v2_header,
    parse_proxy_header,
)


def test_v2_tcp4_header_gives_the_source_and_its_length() -> None:
    header = build_proxy_v2_header(("203.0.113.7", 51234), ("10.213.0.240", 80))
    outcome = parse_proxy_header(header + b"GET / HTTP/1.1\r\n")
    assert outcome.complete
    assert outcome.consumed == len(header) == 16 + 12
    assert outcome.source == ProxySource("203.0.113.7", 51234)


def test_v2_tcp6_header() -> None:
    header = build_proxy_v2_header(("2001:db8::1", 4000), ("2001:db8::2", 80))
    assert parse_proxy_header(header).source == ProxySource("2001:db8::1", 4000)


def test_v2_with_tlvs_consumes_them() -> None:
    header = build_proxy_v2_header(("192.0.2.1", 1), ("192.0.2.2", 2))
    tlv = b"\x04\x00\x03abc"  # PP2_TYPE_NOOP
    patched = header[:14] + struct.pack("!H", 12 + len(tlv)) + header[16:] + tlv
    outcome = parse_proxy_header(patched + b"rest")
    assert outcome.consumed == len(patched)
    assert outcome.source == ProxySource("192.0.2.1", 1)


def test_v2_local_command_has_no_source() -> None:
    local = echo.PROXY_V2_SIGNATURE + b"\x20\x00\x00\x00"
    outcome = parse_proxy_header(local)
    assert outcome.complete and outcome.consumed == 16 and outcome.source is None


@pytest.mark.parametrize("cut", [0, 1, 5, 12, 15, 20])
def test_partial_v2_header_asks_for_more(cut: int) -> None:
    header = build_proxy_v2_header(("192.0.2.1", 1), ("192.0.2.2", 2))
    assert parse_proxy_header(header[:cut]) == NEED_MORE


def test_v2_bad_version_is_an_error() -> None:
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(echo.PROXY_V2_SIGNATURE + b"\x11\x11\x00\x0c" + bytes(12))


def test_v1_header() -> None:
    line = b"PROXY TCP4 198.51.100.9 10.213.0.240 40000 80\r\n"
    outcome = parse_proxy_header(line + b"GET /")
    assert outcome.consumed == len(line)
    assert outcome.source == ProxySource("198.51.100.9", 40000)
    assert parse_proxy_header(b"PROXY UNKNOWN\r\n").source is None
    assert parse_proxy_header(b"PROXY TCP4 1.2.3.4") == NEED_MORE
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(b"PROXY TCP4 nonsense\r\n")


@pytest.mark.parametrize("start", [b"GET / HTTP/1.1\r\n", b"PUT /x", b"hello", b"\r\nX"])
def test_no_header(start: bytes) -> None:
    assert parse_proxy_header(start) == NO_HEADER


def _free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def echo_server() -> Iterator[tuple[int, int]]:
    """The real echo backend on loopback, in a thread of this process."""
    http_port, echo_port = _free_port(), _free_port()
    loop = asyncio.new_event_loop()
    stop = threading.Event()

    async def run() -> None:
        identity = echo.Identity("python-test", "node9")
        http = await asyncio.start_server(
            lambda r, w: echo._serve_http(identity, r, w), "127.0.0.1", http_port
        )
        tcp = await asyncio.start_server(echo._serve_tcp_echo, "127.0.0.1", echo_port)
        udp, _ = await loop.create_datagram_endpoint(
            echo._UdpEcho, local_addr=("127.0.0.1", echo_port)
        )
        while not stop.is_set():
            await asyncio.sleep(0.02)
        udp.close()
        http.close()
        tcp.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", http_port), timeout=0.1).close()
            break
        except OSError:
            threading.Event().wait(0.02)
    yield http_port, echo_port
    stop.set()
    thread.join(5)


def _http_get(port: int, prefix: bytes = b"", requests: int = 1) -> list[dict[str, str]]:
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(prefix)
        reader = sock.makefile("rb")
        for index in range(requests):
            last = index == requests - 1
            connection = "close" if last else "keep-alive"
            sock.sendall(
                f"GET /any/path HTTP/1.1\r\nHost: x\r\nConnection: {connection}\r\n\r\n".encode()
            )
            status = reader.readline()
            assert status.startswith(b"HTTP/1.1 200"), status
            headers = {}
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            assert headers["content-type"] == "application/json"
            answers.append(json.loads(reader.read(int(headers["content-length"]))))
    return answers


def test_http_answer_without_proxy_header(echo_server: tuple[int, int]) -> None:
    (answer,) = _http_get(echo_server[0])
    assert answer == {
        "pod": "python-test",
        "node": "node9",
        "peer": "127.0.0.1",
        "client": "127.0.0.1",
    }


def test_http_answer_with_proxy_v2_keeps_it_for_the_connection(
    echo_server: tuple[int, int],
) -> None:
    header = build_proxy_v2_header(("203.0.113.50", 61000), ("127.0.0.1", echo_server[0]))
    answers = _http_get(echo_server[0], header, requests=2)
    assert [a["client"] for a in answers] == ["203.0.113.50", "203.0.113.50"]
    assert all(a["peer"] == "127.0.0.1" for a in answers)


def test_tcp_echo_strips_proxy_header_and_udp_echo(echo_server: tuple[int, int]) -> None:
    port = echo_server[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(build_proxy_v2_header(("192.0.2.1", 1), ("127.0.0.1", port)) + b"ping\n")
        assert sock.recv(100) == b"ping\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        udp.sendto(b"datagram", ("127.0.0.1", port))
        assert udp.recvfrom(100)[0] == b"datagram"
