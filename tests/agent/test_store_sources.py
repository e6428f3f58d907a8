import json
import time
from pathlib import Path

from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.agent.sources import ChangeQueue, StoreSource
from nodeport_lb.store import Changes, IncrementalStoreReader, ManifestStore, ObjectKey
from tests.support.objects import service

WEB = ObjectKey("Service", "default", "web")


def svc(port: int) -> dict:
    return service("web", [{"port": 80, "nodePort": port}])


def test_the_change_queue_merges_changes_into_one_batch_the_latest_winning() -> None:
    other = ObjectKey("Service", "default", "other")
    queue = ChangeQueue()
    queue.put(Changes())  # nothing: no batch
    assert queue.take(0) is None
    queue.put(Changes({WEB: svc(31000)}, origins={WEB: "a.yaml"}))
    queue.put(Changes({other: svc(31001)}))
    queue.put(Changes(deletes={WEB}))
    queue.put(Changes({WEB: svc(31002)}, {other}, {WEB: "b.yaml"}))
    batch = queue.take(0)
    assert batch is not None and batch.queued_at > 0
    assert batch.upserts == {WEB: svc(31002)} and batch.deletes == {other}
    assert batch.origins == {WEB: "b.yaml"}
    assert queue.take(0) is None


def test_incremental_reader_reparses_only_changed_files(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write(svc(31000))
    store.write(service("other", [{"port": 80}]))
    reader = IncrementalStoreReader(store)
    first = reader.refresh()
    assert set(first.upserts) == {WEB, ObjectKey("Service", "default", "other")}
    assert not reader.refresh()  # nothing changed, nothing re-read
    store.write(svc(31001))
    changes = reader.refresh()
    assert set(changes.upserts) == {WEB}
    assert changes.upserts[WEB]["spec"]["ports"][0]["nodePort"] == 31001


def test_a_file_turned_to_junk_keeps_its_last_good_objects(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    path = store.write(svc(31000))
    reader = IncrementalStoreReader(store)
    reader.refresh()
    path.write_text("{ not yaml: [")
    changes = reader.refresh()
    assert not changes and changes.errors
    assert reader.objects()[WEB]["spec"]["ports"][0]["nodePort"] == 31000
    path.unlink()
    assert reader.refresh().deletes == {WEB}


def test_store_source_reports_a_change_within_100ms(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    queue = ChangeQueue()
    source = StoreSource(store, queue, AgentMetrics(), rescan_period=30)
    source.initial_load()
    assert queue.take(0) is None  # empty store
    source.start()
    try:
        time.sleep(0.2)  # the watch is in place
        delays = []
        for port in (31000, 31001, 31002):
            written = time.monotonic()
            (tmp_path / "web.json").write_text(json.dumps(svc(port)))
            batch = queue.take(timeout=1.0)
            delays.append(time.monotonic() - written)
            assert batch and batch.upserts[WEB]["spec"]["ports"][0]["nodePort"] == port
        assert max(delays) < 0.1
    finally:
        source.stop()
