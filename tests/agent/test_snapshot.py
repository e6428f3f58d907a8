"""The snapshot of the last sync: ignored unless whole, the agent's own and made for the same
code and settings; a restore followed by the ordinary listing gives what a full read gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

from nodeport_lb.agent.rules import RuleConfig
from nodeport_lb.agent.snapshot import read_snapshot, snapshot_key, write_snapshot
from nodeport_lb.agent.state import ClusterState
from nodeport_lb.model import NodePortRange
from nodeport_lb.store import IncrementalStoreReader, ManifestStore, atomic_write_text
from tests.support.objects import endpoint, endpoint_slice, service

CONFIG = RuleConfig("n1")


def key(tmp_path: Path, node: str = "n1"):
    return snapshot_key(tmp_path, node, NodePortRange(), ())


def test_a_snapshot_reads_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "snapshot"
    write_snapshot(path, key(tmp_path), {"x": [1, 2, 3]})
    assert read_snapshot(path, key(tmp_path)) == {"x": [1, 2, 3]}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot"]  # no temporary file left


def test_a_missing_snapshot_is_none(tmp_path: Path) -> None:
    assert read_snapshot(tmp_path / "none", key(tmp_path)) is None


def test_a_corrupt_or_cut_short_snapshot_is_ignored(tmp_path: Path, caplog) -> None:
    path = tmp_path / "snapshot"
    write_snapshot(path, key(tmp_path), {"x": "y" * 1000})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert read_snapshot(path, key(tmp_path)) is None
    path.write_bytes(bytes(data[: len(data) // 2]))
    assert read_snapshot(path, key(tmp_path)) is None
    path.write_bytes(b"")
    assert read_snapshot(path, key(tmp_path)) is None
    assert "digest does not match" in caplog.text


def test_a_snapshot_for_other_settings_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "snapshot"
    write_snapshot(path, key(tmp_path, "n1"), {"x": 1})
    assert read_snapshot(path, key(tmp_path, "n2")) is None
    other_store = tmp_path / "other"
    other_store.mkdir()
    assert read_snapshot(path, key(other_store)) is None
    assert (
        read_snapshot(path, snapshot_key(tmp_path, "n1", NodePortRange(), ("10.0.0.0/8",))) is None
    )


def test_a_snapshot_others_may_write_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "snapshot"
    write_snapshot(path, key(tmp_path), {"x": 1})
    os.chmod(path, 0o622)
    assert read_snapshot(path, key(tmp_path)) is None


def publish(store: ManifestStore, name: str, node_port: int, *addresses: str) -> None:
    ports = [{"name": "http", "port": 80, "targetPort": 8080, "nodePort": node_port}]
    atomic_write_text(store.path / f"service_default_{name}.json", json.dumps(service(name, ports)))
    slice_ = endpoint_slice(name, 8080, [endpoint(a, "n1") for a in addresses], port_name="http")
    atomic_write_text(store.path / f"endpointslice_default_{name}.json", json.dumps(slice_))


def read_all(store: ManifestStore) -> tuple[IncrementalStoreReader, ClusterState]:
    reader = IncrementalStoreReader(store)
    state = ClusterState(CONFIG, NodePortRange())
    changes = reader.refresh()
    state.apply(changes)
    return reader, state


def test_a_restored_state_reads_only_what_changed_and_equals_a_full_read(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path / "store")
    store.path.mkdir()
    publish(store, "a", 31001, "10.1.0.1")
    publish(store, "b", 31002, "10.1.0.2", "10.1.0.3")
    publish(store, "c", 31001, "10.1.0.4")  # claims a's port: set aside while a holds it
    reader, state = read_all(store)
    assert state.blocked == {"default/c": frozenset({("tcp", 31001)})}
    exported = (reader.export(), state.export())

    # while "stopped": b changes, a goes (c now gets its port), d is new
    publish(store, "b", 31002, "10.1.0.9")
    for kind in ("service", "endpointslice"):
        (store.path / f"{kind}_default_a.json").unlink()
    publish(store, "d", 31004, "10.1.0.5")

    restored_reader = IncrementalStoreReader(store)
    restored_reader.restore(exported[0])
    restored = ClusterState(CONFIG, NodePortRange())
    restored.restore(exported[1])
    changes = restored_reader.refresh()
    # b's Service file is as it was: only its slice is read again
    assert {k.name for k in changes.upserts} == {"b-abcde", "d", "d-abcde"}
    assert {k.name for k in changes.deletes} == {"a", "a-abcde"}
    restored.apply(changes)

    _, fresh = read_all(store)
    assert restored.rules == fresh.rules
    assert restored.blocked == fresh.blocked == {}
    fresh_reader = IncrementalStoreReader(store)
    fresh_reader.refresh()
    assert restored_reader.objects() == fresh_reader.objects()
    # and later changes go on as in an agent that never stopped
    publish(store, "c", 31001, "10.1.0.7")
    changes = restored_reader.refresh()
    result = restored.apply(changes)
    assert result.dirty == {"default/c"}
    (port,) = restored.rules["default/c"].ports
    assert dict(port.endpoint_elements) == {"tcp . 31001 . 0": "10.1.0.7 . 8080"}
