"""The manifest store: a directory of Kubernetes objects as `kubectl get -o yaml` prints them.

It is the standalone control plane (lab, hosts without a cluster). Writers replace files
atomically (temp file + rename) so a reader never sees half a file; readers take every
``*.yaml``/``*.yml``/``*.json`` file in the directory whatever its name, and report files that
do not parse instead of failing. Our own writers name files ``<kind>_<namespace>_<name>.yaml``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
LOCK_FILE = ".lock"
# Bounds on one file, so a hostile or broken file costs the reader little and alone: the API
# server refuses objects over ~1.5 MiB, and no object kubectl prints nests 64 levels deep.
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NESTING = 64


class StoreUnreadableError(OSError):
    """The store directory itself could not be listed: nothing can be said about its objects."""


class ManifestError(ValueError):
    """A file's content is refused before it is used (too deep, aliases, too large)."""


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
    # the file could not be read at all (not bad content): its objects are unknown
    unreadable: bool = False

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


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}  # a hostile object keys as nameless; its reader sets it aside
    namespace = meta.get("namespace") or ("" if obj.get("kind") == "Node" else "default")
    return ObjectKey(str(obj.get("kind", "")), str(namespace), str(meta.get("name", "")))


# libyaml's parser is ~10x faster than the pure-Python one: it matters for a store of
# thousands of objects (the agent at scale); both build the same plain objects.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_documents(text: str) -> list[Any]:
    """Every YAML (or JSON, a subset of YAML) document of a file, empty ones dropped.

    Raises ``ManifestError`` for YAML aliases (a kilobyte of nested aliases expands to
    gigabytes, and every comparison walks the expansion; kubectl never prints them) and for
    nesting deeper than ``MAX_NESTING`` (recursion in every later walk of the object)."""
    if text.lstrip()[:1] in ("{", "["):
        # one JSON document: the json module is ~50x faster than building it through YAML
        try:
            doc = json.loads(text)
        except RecursionError:
            raise ManifestError(f"nested deeper than {MAX_NESTING} levels") from None
        except ValueError:
            pass
        else:
            # every container opens with a bracket of the text (brackets inside strings only
            # add to the count), so fewer brackets than the limit cannot nest deeper than it:
            # the walk is left to the rare big object
            if text.count("{") + text.count("[") > MAX_NESTING:
                check_nesting(doc)
            return [doc] if doc is not None else []
    if "&" in text:  # an alias needs an anchor: only then is the event pass worth it
        _refuse_aliases(text)
    docs = [doc for doc in yaml.load_all(text, Loader=_SAFE_LOADER) if doc is not None]
    for doc in docs:
        check_nesting(doc)
    return docs


def _refuse_aliases(text: str) -> None:
    for event in yaml.parse(text, Loader=_SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            raise ManifestError("YAML aliases are not accepted (an alias can expand without bound)")


def check_nesting(doc: Any) -> None:
    """Iterative on purpose: the point is to refuse what would overflow a recursive walk.
    One level at a time (every value of a level, then the next), so no depth is carried per
    value."""
    level = [doc]
    depth = 1
    while level:
        below: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                below.extend(node.values())
            elif isinstance(node, list):
                below.extend(node)
            else:
                continue
            if depth > MAX_NESTING:
                raise ManifestError(f"nested deeper than {MAX_NESTING} levels")
        level = below
        depth += 1


def read_manifest_text(path: Path | str, root: Path | None = None) -> str:
    """A store file's text, refusing what would let a file cost more than itself: a symlink
    that leaves ``root`` (default: the file's directory), anything but a regular file (a FIFO
    blocks), more than ``MAX_FILE_BYTES``. ``OSError`` when the file cannot be read."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ELOOP:  # ELOOP: the name is a symlink
            raise
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(os.path.realpath(root or Path(path).parent)):
            raise ManifestError(f"symlink to {target}, outside the store") from None
        fd = os.open(target, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ManifestError("not a regular file")
        data = _read_bounded(fd, st.st_size)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ManifestError(f"larger than {MAX_FILE_BYTES} bytes")
    return data.decode("utf-8")


_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_bounded(fd: int, size: int) -> bytes:
    """Up to ``MAX_FILE_BYTES + 1`` bytes, asking for the size the file had when opened (a
    buffer of the largest size for each of 20,000 small files costs more than reading them);
    a file that grew meanwhile is read on, to the bound."""
    limit = MAX_FILE_BYTES + 1
    chunks = []
    total = 0
    want = min(size + 1, limit)
    while total < limit:
        chunk = os.read(fd, min(want, limit - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = 1 << 16
    return b"".join(chunks)


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


class _NoAliasDumper(yaml.SafeDumper):
    """Writes a value shared by two fields twice, never as an anchor and alias: the store's
    readers refuse aliases, so an object written with one could never be read back."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False)


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
            parsed = parse_manifest_file(path)
            contents.errors += parsed.errors
            contents.objects.update(parsed.objects)
            contents.sources.update(dict.fromkeys(parsed.objects, path))
        return contents

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.load().objects.get(ObjectKey(kind, namespace, name))

    def write(self, obj: dict[str, Any]) -> Path:
        key = object_key(obj)
        path = self.file_for(key)
        atomic_write_text(path, dump_yaml(obj))
        # A copy elsewhere (a hand-written multi-document file) would shadow or revive it.
        self._remove_elsewhere(key, keep=path)
        return path

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        return self._remove_elsewhere(ObjectKey(kind, namespace, name), keep=None)

    def _remove_elsewhere(self, key: ObjectKey, keep: Path | None) -> bool:
        """Take ``key`` out of every store file but ``keep``; files holding other objects too
        are rewritten without it, so no neighbour is lost."""
        removed = False
        for path in self.manifest_files():
            if path == keep or not _mentions(path, key.name):
                continue
            parsed = parse_manifest_file(path)
            if key not in parsed.objects:
                continue
            others = [obj for other, obj in parsed.objects.items() if other != key]
            with contextlib.suppress(FileNotFoundError):
                if others or parsed.errors:
                    atomic_write_text(path, yaml.safe_dump_all(others, sort_keys=False))
                else:
                    path.unlink()
                removed = True
        return removed


@dataclass
class ParsedFile:
    """The objects of one store file and what was wrong with it (both may be non-empty)."""

    objects: dict[ObjectKey, dict[str, Any]] = field(default_factory=dict)
    errors: list[StoreError] = field(default_factory=list)


def parse_manifest_file(path: Path | str, root: Path | None = None) -> ParsedFile:
    """Parse one store file (``root``: the store it belongs to); never raises (errors are
    reported instead)."""
    try:
        text = read_manifest_text(path, root)
    except OSError as exc:
        message = f"cannot read: {_one_line(exc)}"
        return ParsedFile(errors=[StoreError(Path(path), message, unreadable=True)])
    except (UnicodeDecodeError, ManifestError) as exc:
        return ParsedFile(errors=[StoreError(Path(path), f"cannot parse: {_one_line(exc)}")])
    return parse_manifest_text(path, text)


def parse_manifest_text(path: Path | str, text: str) -> ParsedFile:
    """The objects of a store file's text (``path``: for messages); never raises."""
    parsed = ParsedFile()
    try:
        docs = load_documents(text)
    except (yaml.YAMLError, ManifestError, RecursionError) as exc:
        parsed.errors.append(StoreError(Path(path), f"cannot parse: {_one_line(exc)}"))
        return parsed
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind"):
            parsed.errors.append(StoreError(Path(path), "not a Kubernetes object"))
            continue
        items = doc.get("items") if str(doc["kind"]).endswith("List") else [doc]
        for item in items or []:
            if not isinstance(item, dict):
                parsed.errors.append(StoreError(Path(path), "list item is not an object"))
                continue
            parsed.objects[object_key(item)] = item
    return parsed


FileSignature = tuple[int, int, int]  # (inode, size, mtime_ns): changes whenever a writer renames


@dataclass
class Changes:
    """Objects added or changed and objects removed, by key: what the agent's sources queue
    and its state applies. ``origins``: where an upsert came from (a file, the API), for the
    messages about it."""

    upserts: dict[ObjectKey, Mapping[str, Any]] = field(default_factory=dict)
    deletes: set[ObjectKey] = field(default_factory=set)
    origins: dict[ObjectKey, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.deletes)


@dataclass
class StoreChanges(Changes):
    """What one ``IncrementalStoreReader.refresh`` found: objects added/changed and removed."""

    errors: list[StoreError] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every file could be read (bad content is fine: it is set aside, not unknown)."""
        return not any(error.unreadable for error in self.errors)


class IncrementalStoreReader:
    """Reads a store again re-parsing only files whose (inode, size, mtime) changed.

    A file that stops parsing keeps contributing its last good objects (bad input never
    removes working state: the rules made from it keep serving); its objects go away only
    when the file is deleted.
    When two files hold the same object, the last file in name order wins, as in ``load()``.

    What is kept of each file is its last good text and the keys of its objects, not the
    objects: at 10,000 Services the parsed objects were 60 MB, their text is a sixth of that.
    The objects are parsed again from that text on the rare paths that need them (which keys
    of a changed file changed, a file another one shadowed becoming the winner, ``objects``).
    Files are kept by their path as a string: at 20,000 files, hashing and comparing ``Path``
    objects was a third of a rescan.
    """

    def __init__(self, store: ManifestStore) -> None:
        self.store = store
        self._directory = str(store.path)
        self._signatures: dict[str, FileSignature] = {}
        self._text_of_file: dict[str, str] = {}  # last text that gave objects
        self._keys_of_file: dict[str, tuple[ObjectKey, ...]] = {}
        # the files holding each object: one in the usual case (a tuple: a set per object
        # was 5 MB at 10,000 Services)
        self._files_of_key: dict[ObjectKey, tuple[str, ...]] = {}

    def export(self) -> tuple[dict, dict, dict]:
        """What the reader knows, for a snapshot: copies of its tables (their values are
        never changed in place, so shallow copies are a consistent view); which files hold
        an object is not kept but made again by ``restore``."""
        return dict(self._signatures), dict(self._text_of_file), dict(self._keys_of_file)

    def restore(self, exported: tuple[dict, dict, dict]) -> None:
        """Start from what ``export`` gave (its tables are taken over, not copied): the next
        refresh reads only the files whose signature differs from what was exported (or that
        are new, or gone)."""
        self._signatures, self._text_of_file, self._keys_of_file = exported
        keys_of_file = self._keys_of_file
        files_of_key: dict[ObjectKey, tuple[str, ...]] = {}
        for path in sorted(keys_of_file):
            for key in keys_of_file[path]:
                files = files_of_key.get(key)
                files_of_key[key] = (path,) if files is None else (*files, path)
        self._files_of_key = files_of_key

    def objects(self) -> dict[ObjectKey, dict[str, Any]]:
        parsed: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        return {key: self._winner(key, parsed) for key in self._files_of_key}

    def file_of(self, key: ObjectKey) -> Path | None:
        """The file an object currently comes from, for messages."""
        files = self._files_of_key.get(key)
        return Path(max(files)) if files else None

    def origin_of(self, key: ObjectKey) -> str:
        """``file_of`` as text ("" when none), without making a Path for each of 20,000."""
        files = self._files_of_key.get(key)
        return max(files) if files else ""

    def refresh(self, only: Iterable[str | os.PathLike[str]] | None = None) -> StoreChanges:
        """Re-read changed files: all of them, or only ``only`` (names from inotify).

        Raises ``StoreUnreadableError`` when the directory cannot be listed: that says
        nothing about the objects, so nothing is removed. A file that cannot be stat'ed or
        read for another reason than being gone keeps its last objects and is an
        ``unreadable`` error."""
        changes = StoreChanges()
        current, gone = self._listing(only, changes.errors)
        self._read(current, gone, changes)
        return changes

    def refresh_in_parts(self, files_per_part: int) -> Iterator[StoreChanges]:
        """``refresh()`` of every file, handed out ``files_per_part`` changed files at a time
        (in name order): a caller that uses each part before asking for the next never holds
        the objects of every file at once (at 20,000 files, a third of the agent's memory).
        The first part has the deletions and the listing's errors; ``StoreUnreadableError``
        as ``refresh``."""
        errors: list[StoreError] = []
        current, gone = self._listing(None, errors)
        changed = sorted(
            p for p, signature in current.items() if self._signatures.get(p) != signature
        )
        for start in range(0, max(len(changed), 1), files_per_part):
            changes = StoreChanges(errors=errors if start == 0 else [])
            part = {p: current[p] for p in changed[start : start + files_per_part]}
            self._read(part, gone if start == 0 else [], changes)
            yield changes

    def _listing(
        self, only: Iterable[str | os.PathLike[str]] | None, errors: list[StoreError]
    ) -> tuple[dict[str, FileSignature], list[str]]:
        """The signatures of the files to look at, and the known files that are gone."""
        if only is None:
            current = self._scan(errors)
            return current, [p for p in self._signatures if p not in current]
        asked = {os.fspath(p) for p in only}
        current = self._signed([p for p in asked if _is_manifest_name(os.path.basename(p))], errors)
        return current, [p for p in asked if p in self._signatures and p not in current]

    def _read(
        self, current: dict[str, FileSignature], gone: Iterable[str], changes: StoreChanges
    ) -> None:
        # the objects parsed by this refresh, by file: where the upserts come from
        parsed_now: dict[str, dict[ObjectKey, dict[str, Any]]] = {}
        touched: set[ObjectKey] = set()
        for path in gone:
            self._signatures.pop(path, None)
            touched |= self._set_file(path, None, {})
        for path, signature in current.items():
            if self._signatures.get(path) == signature:
                continue
            try:
                text = read_manifest_text(path, self.store.path)
            except OSError as exc:
                message = f"cannot read: {_one_line(exc)}"
                changes.errors.append(StoreError(Path(path), message, unreadable=True))
                continue  # not remembered as read: the next rescan tries again
            except (UnicodeDecodeError, ManifestError) as exc:
                changes.errors.append(StoreError(Path(path), f"cannot parse: {_one_line(exc)}"))
                self._signatures[path] = signature
                continue  # keep this file's last good objects
            self._signatures[path] = signature
            if text == self._text_of_file.get(path):
                continue  # rewritten as it was
            parsed = parse_manifest_text(path, text)
            changes.errors += parsed.errors
            if parsed.errors and not parsed.objects:
                continue  # keep this file's last good objects
            parsed_now[path] = parsed.objects
            touched |= self._set_file(path, text, parsed.objects)
        for key in touched:
            if key in self._files_of_key:
                changes.upserts[key] = self._winner(key, parsed_now)
            else:
                changes.deletes.add(key)

    def _winner(
        self, key: ObjectKey, parsed: dict[str, dict[ObjectKey, dict[str, Any]]]
    ) -> dict[str, Any]:
        """The object from the last file holding it; ``parsed``: files parsed already (a
        file not among them is parsed from its kept text and added)."""
        files = self._files_of_key[key]
        path = files[0] if len(files) == 1 else max(files)
        if path not in parsed:
            parsed[path] = parse_manifest_text(path, self._text_of_file[path]).objects
        return parsed[path][key]

    def _set_file(
        self, path: str, text: str | None, objects: dict[ObjectKey, dict[str, Any]]
    ) -> set[ObjectKey]:
        """Record ``path``'s new text and objects (None, {}: the file is gone); returns the
        keys whose object changed."""
        old_text = self._text_of_file.pop(path, None)
        old_keys = self._keys_of_file.pop(path, ())
        for key in old_keys:
            files = tuple(f for f in self._files_of_key[key] if f != path)
            if files:
                self._files_of_key[key] = files
            else:
                del self._files_of_key[key]
        if text is not None and objects:
            self._text_of_file[path] = text
            self._keys_of_file[path] = tuple(objects)
        for key in objects:
            held = self._files_of_key.get(key)
            self._files_of_key[key] = (path,) if held is None else (*held, path)
        if old_text is None:
            return set(objects)
        old = parse_manifest_text(path, old_text).objects  # it parsed when it was kept
        return {k for k in old if old[k] != objects.get(k)} | {
            k for k in objects if old.get(k) != objects[k]
        }

    def _scan(self, errors: list[StoreError]) -> dict[str, FileSignature]:
        """Signatures of every manifest file (os.scandir: one stat per file, its path made
        in C, no pathlib cost; a rescan of 20,000 files stays well under a second)."""
        found = {}
        try:
            with os.scandir(self._directory) as listing:
                entries = [entry for entry in listing if _is_manifest_name(entry.name)]
        except OSError as exc:
            raise StoreUnreadableError(exc.errno, f"cannot list {self.store.path}: {exc}") from exc
        for entry in entries:
            try:
                st = entry.stat()  # through a symlink: the target's changes count
            except FileNotFoundError:
                continue  # gone (or a dangling symlink)
            except OSError as exc:
                path = entry.path
                errors.append(StoreError(Path(path), f"cannot stat: {exc}", unreadable=True))
                if path in self._signatures:
                    found[path] = self._signatures[path]  # unknown, so unchanged
                continue
            if stat.S_ISREG(st.st_mode):
                found[entry.path] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return found

    def _signed(self, paths: Iterable[str], errors: list[StoreError]) -> dict[str, FileSignature]:
        found = {}
        for path in paths:
            try:
                st = os.stat(path)  # through a symlink: the target's changes count
            except FileNotFoundError:
                continue  # gone (or a dangling symlink)
            except OSError as exc:
                errors.append(StoreError(Path(path), f"cannot stat: {exc}", unreadable=True))
                if path in self._signatures:
                    found[path] = self._signatures[path]  # unknown, so unchanged
                continue
            if stat.S_ISREG(st.st_mode):
                found[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return found


def _is_manifest_name(name: str) -> bool:
    return not name.startswith(".") and name.endswith(MANIFEST_SUFFIXES)


def _mentions(path: Path, text: str) -> bool:
    """Cheap pre-check before parsing: a file that holds the object contains its name."""
    try:
        return text.encode() in path.read_bytes()
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
