"""The echo backend every lab pod runs: it tells who it is and whom it saw.

HTTP on ``--port`` answers any path and method with
``{"pod": NAME, "node": NODE, "peer": TCP-PEER-IP, "client": PROXY-SOURCE-OR-PEER-IP}``
(addresses are IPs without port), plus ``"forwarded_for"`` with the X-Forwarded-For header's
value when the request has one (HAProxy's ``option forwardfor``). A PROXY protocol header
(v2, or v1) at connection start is understood on every TCP port, as HAProxy's
``send-proxy-v2`` sends it; without one, ``client`` is the TCP peer. ``--echo-port`` serves a
plain TCP echo and a UDP echo for non-HTTP tests.

Run as ``python -m nodeport_lb.lab.echo --name NAME --node NODE``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

DEFAULT_HTTP_PORT = 31000
DEFAULT_ECHO_PORT = 7  # the classic echo service port, TCP and UDP

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
PROXY_V1_PREFIX = b"PROXY "
PROXY_V1_MAX_LENGTH = 107  # the spec's longest v1 line, CRLF included
MAX_REQUEST_HEAD = 64 * 1024


class ProxyHeaderError(ValueError):
    """The connection started like a PROXY header but is not a valid one."""


@dataclass(frozen=True)
class ProxySource:
    """Where the connection really came from, as the PROXY header says."""

    address: str
    port: int


@dataclass(frozen=True)
class ProxyParse:
    """Outcome of looking at the first bytes of a connection.

    ``complete`` False means more bytes are needed to decide. ``consumed`` is the length of the
    header (0 when there is none); ``source`` is None for LOCAL/UNKNOWN headers or no header.
    """

    complete: bool
    consumed: int = 0
    source: ProxySource | None = None


NEED_MORE = ProxyParse(complete=False)
NO_HEADER = ProxyParse(complete=True)

# PROXY v2 address families (high nibble) and their address block sizes.
_V2_INET, _V2_INET6, _V2_UNIX = 0x1, 0x2, 0x3


def parse_proxy_header(data: bytes) -> ProxyParse:
    """Recognise a PROXY protocol v2 or v1 header at the start of ``data``."""
    if len(data) < len(PROXY_V2_SIGNATURE) and PROXY_V2_SIGNATURE.startswith(data):
        return NEED_MORE  # also when data is empty: wait for the first bytes
    if data.startswith(PROXY_V2_SIGNATURE):
        return _parse_v2(data)
    if len(data) < len(PROXY_V1_PREFIX) and PROXY_V1_PREFIX.startswith(data):
        return NEED_MORE
    if data.startswith(PROXY_V1_PREFIX):
        return _parse_v1(data)
    return NO_HEADER


def _parse_v2(data: bytes) -> ProxyParse:
    if len(data) < 16:
        return NEED_MORE
    version_command, family_protocol, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2: unsupported version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError(f"PROXY v2: unknown command {command}")
    total = 16 + length
    if len(data) < total:
        return NEED_MORE
    block = data[16:total]
    family = family_protocol >> 4
    if command == 0 or family not in (_V2_INET, _V2_INET6):
        # LOCAL (health checks) or AF_UNSPEC/AF_UNIX: no usable address, the peer is the client
        return ProxyParse(True, total, None)
    address_size = 4 if family == _V2_INET else 16
    if len(block) < 2 * address_size + 4:
        raise ProxyHeaderError("PROXY v2: address block too short")
    source_ip = ipaddress.ip_address(block[:address_size])
    (source_port,) = struct.unpack("!H", block[2 * address_size : 2 * address_size + 2])
    return ProxyParse(True, total, ProxySource(str(source_ip), source_port))


def _parse_v1(data: bytes) -> ProxyParse:
    end = data.find(b"\r\n", 0, PROXY_V1_MAX_LENGTH)
    if end < 0:
        if len(data) < PROXY_V1_MAX_LENGTH:
            return NEED_MORE
        raise ProxyHeaderError("PROXY v1: no CRLF within 107 bytes")
    fields = data[:end].decode("ascii", "replace").split(" ")
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return ProxyParse(True, end + 2, None)
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"PROXY v1: malformed line {data[:end]!r}")
    try:
        source_ip = ipaddress.ip_address(fields[2])
        source_port = int(fields[4])
    except ValueError as exc:
        raise ProxyHeaderError(f"PROXY v1: {exc}") from exc
    return ProxyParse(True, end + 2, ProxySource(str(source_ip), source_port))


def build_proxy_v2_header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY v2 PROXY/TCP header, as HAProxy's send-proxy-v2 writes it (for tests/clients)."""
    src_ip, dst_ip = ipaddress.ip_address(source[0]), ipaddress.ip_address(destination[0])
    family = _V2_INET if src_ip.version == 4 else _V2_INET6
    block = src_ip.packed + dst_ip.packed + struct.pack("!HH", source[1], destination[1])
    return PROXY_V2_SIGNATURE + struct.pack("!BBH", 0x21, (family << 4) | 0x1, len(block)) + block


@dataclass(frozen=True)
class Identity:
    pod: str
    node: str


async def _read_proxy_header(reader: asyncio.StreamReader) -> tuple[ProxySource | None, bytes]:
    """Consume a PROXY header if the connection starts with one; return it and the bytes after."""
    buffer = b""
    while True:
        outcome = parse_proxy_header(buffer)
        if outcome.complete:
            return outcome.source, buffer[outcome.consumed :]
        chunk = await reader.read(4096)
        if not chunk:
            return None, buffer
        buffer += chunk


def answer_body(
    identity: Identity, peer: str, source: ProxySource | None, forwarded_for: str | None = None
) -> bytes:
    answer = {
        "pod": identity.pod,
        "node": identity.node,
        "peer": peer,
        "client": source.address if source else peer,
    }
    if forwarded_for is not None:
        answer["forwarded_for"] = forwarded_for
    return json.dumps(answer).encode() + b"\n"


async def _serve_http(
    identity: Identity, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = _peer_ip(writer)
    try:
        source, buffer = await _read_proxy_header(reader)
        # HTTP/1.1 with keep-alive, so an LB that reuses server connections keeps working.
        while True:
            while b"\r\n\r\n" not in buffer:
                if len(buffer) > MAX_REQUEST_HEAD:
                    return
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            parts = request_line.split(" ")
            method = parts[0].upper()
            version = parts[2] if len(parts) > 2 else "HTTP/1.0"
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines)
            }
            body_length = int(headers.get("content-length", "0") or 0)
            while len(buffer) < body_length:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
            buffer = buffer[body_length:]
            connection = headers.get("connection", "").lower()
            keep_alive = connection != "close" and (
                version == "HTTP/1.1" or connection == "keep-alive"
            )
            body = answer_body(identity, peer, source, headers.get("x-forwarded-for"))
            response_head = (
                "HTTP/1.1 200 OK\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n"
                f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
            ).encode()
            writer.write(response_head + (b"" if method == "HEAD" else body))
            await writer.drain()
            if not keep_alive or "chunked" in headers.get("transfer-encoding", ""):
                return
    except (ProxyHeaderError, ConnectionError, ValueError):
        return
    finally:
        writer.close()


async def _serve_tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        _, pending = await _read_proxy_header(reader)
        while pending:
            writer.write(pending)
            await writer.drain()
            pending = await reader.read(65536)
    except (ProxyHeaderError, ConnectionError):
        pass
    finally:
        writer.close()


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a datagram endpoint's transport, as create_datagram_endpoint makes it
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)


def _peer_ip(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else ""


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def serve(
    identity: Identity,
    http_port: int,
    echo_port: int,
    host: str = "0.0.0.0",
    ready_file: Path | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _settle, stop)
    http = await asyncio.start_server(
        lambda r, w: _serve_http(identity, r, w), host, http_port, reuse_address=True
    )
    echo = await asyncio.start_server(_serve_tcp_echo, host, echo_port, reuse_address=True)
    udp, _ = await loop.create_datagram_endpoint(
        _UdpEcho, local_addr=(host, echo_port), family=socket.AF_INET
    )
    if ready_file:
        # written only once every socket listens: `lab pod add` waits for it
        ready_file.write_text(f"{os.getpid()}\n")
    print(
        f"echo {identity.pod} on {identity.node}: http :{http_port}, tcp/udp echo :{echo_port}",
        file=sys.stderr,
        flush=True,
    )
    try:
        await stop
    finally:
        udp.close()
        for server in (http, echo):
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodeport_lb.lab.echo", description=__doc__)
    parser.add_argument("--name", required=True, help="pod name reported as 'pod'")
    parser.add_argument("--node", required=True, help="node name reported as 'node'")
    parser.add_argument("--port", type=int, default=DEFAULT_HTTP_PORT, help="HTTP port")
    parser.add_argument("--echo-port", type=int, default=DEFAULT_ECHO_PORT, help="TCP+UDP echo")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--ready-file", type=Path, help="written with the PID once listening")
    args = parser.parse_args(argv)
    identity = Identity(args.name, args.node)
    asyncio.run(serve(identity, args.port, args.echo_port, args.host, args.ready_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
