"""A STAND-IN for the Kubernetes API's list and streaming watch, over real HTTP on loopback (or
in a namespace the test made): what the agent's KubeSource reads, since no API server runs here.
Serves lists from ``items`` and watch streams from ``events`` (per collection path); a ``None``
event ends a stream."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeApi:
    """Serves lists from ``items`` and watch streams from ``events`` (per collection path)."""

    def __init__(self) -> None:
        self.items: dict[str, list[dict]] = {
            "/api/v1/services": [],
            "/apis/discovery.k8s.io/v1/endpointslices": [],
            "/api/v1/nodes": [],
        }
        self.events: dict[str, queue.Queue] = {path: queue.Queue() for path in self.items}
        self.lists: dict[str, int] = dict.fromkeys(self.items, 0)
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if url.path not in api.items:
                    self.send_error(404)
                    return
                if query.get("watch") == ["true"]:
                    self._stream(url.path)
                    return
                api.lists[url.path] += 1
                body = json.dumps(
                    {
                        "kind": "List",
                        "metadata": {"resourceVersion": "10"},
                        "items": api.items[url.path],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, path: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    try:
                        event = api.events[path].get(timeout=0.2)
                    except queue.Empty:
                        event = {"type": "BOOKMARK", "object": {"metadata": {}}}
                    if event is None:
                        break
                    line = json.dumps(event).encode() + b"\n"
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    except OSError:
                        return
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"
