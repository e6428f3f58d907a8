"""A pod's backend for the namespace tests and the benchmarks: says which address it saw the
client come from.

TCP: HTTP/1.1 (keep-alive) answering ``{"pod": NAME, "peer": IP}``; UDP: the same JSON as a
datagram reply. Run inside a pod's network namespace:
``python podserver.py --name pod-a --port 31000``.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, action="append", required=True)
    args = parser.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = json.dumps({"pod": args.name, "peer": self.client_address[0]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    def serve_udp(port: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", port))
        while True:
            _data, peer = sock.recvfrom(2048)
            sock.sendto(json.dumps({"pod": args.name, "peer": peer[0]}).encode(), peer)

    # benchmarks open connections fast: http.server's backlog of 5 would drop SYNs
    ThreadingHTTPServer.request_queue_size = 4096
    servers = []
    for port in args.port:
        threading.Thread(target=serve_udp, args=(port,), daemon=True).start()
        server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
        server.daemon_threads = True
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
