"""The manifest store: atomic writes, tolerant reads."""

from __future__ import annotations

from pathlib import Path

from nodeport_lb.store import ManifestStore, ObjectKey


def test_write_is_atomic_and_readable(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    path = store.write({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}})
    assert path.name == "service_default_web.yaml"
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    assert store.get("Service", "default", "web")["metadata"]["name"] == "web"


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path)
    store.write({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}})
    (tmp_path / "junk.yaml").write_text("kind: [unclosed")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00junk")
    (tmp_path / "scalar.yaml").write_text("42\n")
    contents = store.load()
    assert list(contents.objects) == [ObjectKey("Service", "default", "web")]
    assert sorted(e.path.name for e in contents.errors) == [
        "binary.json",
        "junk.yaml",
        "scalar.yaml",
    ]


def test_lists_and_multi_document_files(tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(
        "apiVersion: v1\nkind: List\nitems:\n"
        "- {apiVersion: v1, kind: Service, metadata: {name: a}}\n"
        "---\n"
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
        "metadata: {name: a-1, namespace: web}\n"
    )
    contents = ManifestStore(tmp_path).load()
    assert set(contents.objects) == {
        ObjectKey("Service", "default", "a"),
        ObjectKey("EndpointSlice", "web", "a-1"),
    }


def test_delete_keeps_the_other_objects_of_a_shared_file(tmp_path: Path) -> None:
    (tmp_path / "many.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n"
        "---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n"
    )
    store = ManifestStore(tmp_path)
    assert store.delete("Service", "default", "a")
    assert set(store.load().objects) == {ObjectKey("Service", "default", "b")}
    assert store.delete("Service", "default", "b")
    assert list(tmp_path.glob("*.yaml")) == []
    assert not store.delete("Service", "default", "b")


def test_write_replaces_a_copy_in_another_file(tmp_path: Path) -> None:
    # "z.yaml" sorts after our own file: a stale copy there would win on load.
    (tmp_path / "z.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: NodePort}\n"
        "---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: other}\n"
    )
    store = ManifestStore(tmp_path)
    store.write(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"type": "LoadBalancer"},
        }
    )
    contents = store.load()
    assert (
        contents.objects[ObjectKey("Service", "default", "web")]["spec"]["type"] == "LoadBalancer"
    )
    assert ObjectKey("Service", "default", "other") in contents.objects
