"""A stand-in for one Kubernetes node, run inside a test network namespace (stdlib only):

- the Service's nodePort: an echo "pod" that reads an optional PROXY v2 header and answers
  JSON {node, peer, client, proxy};
- the healthCheckNodePort: HTTP 200 or 503 as the file STATE says (kube-proxy's answer), and a
  log line per check saying whether it began with a PROXY header;
- the node agent's agent-check port: logs what HAProxy sent and answers "up 100%".

usage: python3 fakenode.py NAME NODE_PORT HCNP AGENT_PORT DIR
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
from pathlib import Path

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def read_proxy_v2(conn: socket.socket) -> tuple[bytes, str | None]:
    """(bytes read that were not a PROXY header, the PROXY source address or None)."""
    head = conn.recv(16, socket.MSG_PEEK | socket.MSG_WAITALL)
    if not head.startswith(PROXY_V2_SIGNATURE):
        return b"", None
    head = conn.recv(16, socket.MSG_WAITALL)
    length = int.from_bytes(head[14:16], "big")
    body = conn.recv(length, socket.MSG_WAITALL) if length else b""
    if head[13] == 0x11:  # TCP over IPv4: src, dst, src port, dst port
        return b"", socket.inet_ntoa(body[0:4])
    return b"", "unknown"


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        kind = self.server.kind
        directory: Path = self.server.directory
        conn: socket.socket = self.request
        conn.settimeout(5)
        try:
            if kind == "pod":
                _, client = read_proxy_v2(conn)
                conn.recv(4096)
                body = json.dumps(
                    {
                        "node": NAME,
                        "peer": self.client_address[0],
                        "client": client or self.client_address[0],
                        "proxy": client is not None,
                    }
                )
                conn.sendall(
                    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body.encode()
                )
            elif kind == "hcnp":
                first = conn.recv(4096)
                with (directory / "checks.log").open("a") as log:
                    log.write(
                        json.dumps(
                            {
                                "proxy": first.startswith(PROXY_V2_SIGNATURE),
                                "line": first.split(b"\r\n")[0].decode(errors="replace"),
                            }
                        )
                        + "\n"
                    )
                status = (directory / "STATE").read_text().strip()
                reason = "OK" if status == "200" else "Service Unavailable"
                local = 1 if status == "200" else 0
                body = json.dumps({"localEndpoints": local})
                conn.sendall(
                    f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
                )
            else:  # agent-check
                sent = conn.recv(4096)
                with (directory / "agent.log").open("a") as log:
                    log.write(json.dumps(sent.decode(errors="replace")) + "\n")
                conn.sendall(b"up 100%\n")
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(kind: str, port: int, directory: Path) -> None:
    server = Server(("0.0.0.0", port), Handler)
    server.kind = kind
    server.directory = directory
    threading.Thread(target=server.serve_forever, daemon=True).start()


if __name__ == "__main__":
    NAME = sys.argv[1]
    node_port, hcnp, agent_port = (int(p) for p in sys.argv[2:5])
    state_dir = Path(sys.argv[5])
    serve("pod", node_port, state_dir)
    serve("hcnp", hcnp, state_dir)
    serve("agent", agent_port, state_dir)
    (state_dir / "ready").write_text("ok")
    threading.Event().wait()
