"""KubeSource against a small Kubernetes API stand-in on loopback (list + streaming watch)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.agent.sources import ChangeQueue, KubeSource
from nodeport_lb.store import ObjectKey
from tests.netns.objects import service

WEB = ObjectKey("Service", "default", "web")


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


@pytest.fixture
def api() -> Iterator[FakeApi]:
    fake = FakeApi()
    yield fake
    for events in fake.events.values():
        events.put(None)
    fake.server.shutdown()
    fake.server.server_close()


def kubeconfig(tmp_path: Path, url: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "t",
                "clusters": [{"name": "t", "cluster": {"server": url}}],
                "users": [{"name": "t", "user": {"token": "x"}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
            }
        )
    )
    return str(path)


def next_batch(changes: ChangeQueue):
    batch = changes.take(timeout=3)
    assert batch is not None
    return batch


def test_lists_then_follows_watch_events_and_relists_on_expiry(
    api: FakeApi, tmp_path: Path
) -> None:
    web = service("web", [{"port": 80, "nodePort": 31000}])
    del web["kind"], web["apiVersion"]  # list items come without them, as from the API
    api.items["/api/v1/services"] = [web]
    changes = ChangeQueue()
    source = KubeSource(kubeconfig(tmp_path, api.url), "node1", changes, AgentMetrics())
    source.initial_load()
    try:
        batch = next_batch(changes)
        assert batch.upserts[WEB]["kind"] == "Service"

        changed = {**web, "spec": {**web["spec"], "type": "LoadBalancer"}}
        api.events["/api/v1/services"].put({"type": "MODIFIED", "object": changed})
        assert next_batch(changes).upserts[WEB]["spec"]["type"] == "LoadBalancer"

        # the watch expired (410 Gone) while the Service was deleted: a relist finds out
        api.items["/api/v1/services"] = []
        api.events["/api/v1/services"].put(
            {"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}
        )
        assert next_batch(changes).deletes == {WEB}
        assert api.lists["/api/v1/services"] == 2
    finally:
        source.stop()
