"""The manifest store: a directory of Kubernetes objects as `kubectl get -o yaml` prints them.

It is the standalone control plane (lab, hosts without a cluster). Writers replace files
atomically (temp file + rename) so a reader never sees half a file; readers take every
``*.yaml``/``*.yml``/``*.json`` file in the directory whatever its name, and report files that
do not parse instead of failing. Our own writers name files ``<kind>_<namespace>_<name>.yaml``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass
class StoreError:
    """A file in the store that could not be used; the reader keeps going."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class StoreContents:
    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    # which file each object came from, for messages
    sources: dict[ObjectKey, Path] = field(default_factory=dict)
    errors: list[StoreError] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for key, obj in self.objects.items() if key.kind == kind]


def object_key(obj: dict[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace") or ("" if obj.get("kind") == "Node" else "default")
    return ObjectKey(str(obj.get("kind", "")), str(namespace), str(meta.get("name", "")))


def load_documents(text: str) -> list[Any]:
    """Every YAML (or JSON, a subset of YAML) document of a file, empty ones dropped."""
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def atomic_write_text(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dump_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


class ManifestStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ManifestStore({str(self.path)!r})"

    def file_for(self, key: ObjectKey) -> Path:
        return self.path / f"{key.kind.lower()}_{key.namespace or 'cluster'}_{key.name}.yaml"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock for read-modify-write cycles (port allocation) across processes."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def manifest_files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(
            p
            for p in self.path.iterdir()
            if p.suffix in MANIFEST_SUFFIXES and not p.name.startswith(".") and p.is_file()
        )

    def load(self) -> StoreContents:
        contents = StoreContents()
        for path in self.manifest_files():
            try:
                docs = load_documents(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                contents.errors.append(StoreError(path, f"cannot parse: {_one_line(exc)}"))
                continue
            for doc in docs:
                if not isinstance(doc, dict) or not doc.get("kind"):
                    contents.errors.append(StoreError(path, "not a Kubernetes object"))
                    continue
                items = doc.get("items") if doc["kind"].endswith("List") else [doc]
                for item in items or []:
                    if not isinstance(item, dict):
                        contents.errors.append(StoreError(path, "list item is not an object"))
                        continue
                    key = object_key(item)
                    contents.objects[key] = item
                    contents.sources[key] = path
        return contents

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.load().objects.get(ObjectKey(kind, namespace, name))

    def write(self, obj: dict[str, Any]) -> Path:
        path = self.file_for(object_key(obj))
        atomic_write_text(path, dump_yaml(obj))
        return path

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        key = ObjectKey(kind, namespace, name)
        removed = False
        contents = self.load()
        source = contents.sources.get(key)
        for path in {self.file_for(key), *([source] if source else [])}:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed = True
        return removed


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False)
