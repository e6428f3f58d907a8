"""KubeSource against a small Kubernetes API stand-in on loopback (list + streaming watch)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.agent.sources import ChangeQueue, KubeSource
from nodeport_lb.store import ObjectKey
from tests.support.objects import service
from tests.support.watch_api import FakeApi

WEB = ObjectKey("Service", "default", "web")


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
