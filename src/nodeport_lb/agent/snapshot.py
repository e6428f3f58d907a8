"""What the agent knew after its last sync, kept for its next start (manifest store only).

A restart over the table a previous run left has to read, parse and validate every store
file and compute every Service's rules again before its first transaction: at 10,000
Services that is most of its start. The snapshot keeps the store reader's view (each file's
signature, last good text and keys) and the cluster state computed from exactly that view
(Services, EndpointSlices, the Node, the rules, who holds a contested port), taken in one
consistent moment.

It is never trusted blindly:
- it is ignored whole when it is not the agent's own (owner, mode), when its digest does not
  match its content (cut short, corrupted), or when it was made by other code, another
  Python, another store, node name, nodePort range or --nodeport-addresses;
- a store file whose signature (inode, size, mtime) differs from the snapshot's, or that is
  new or gone, is read again by the ordinary first listing, exactly as a running agent's
  rescan would: the snapshot stands in only for the files the listing finds unchanged, on
  the same evidence the running agent uses between rescans;
- what it says the table holds (the applied rules) is used only when the live table's
  generation number, which every transaction of the agent changes, is the one it recorded;
  the first sync then changes only the Services the listing found changed. Otherwise the first
  sync replaces the table, as at any start.

Written atomically (a temporary file renamed over it), mode 0600, after the agent has been
idle a moment and at stop, never on a change's path.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nodeport_lb

log = logging.getLogger(__name__)

MAGIC = b"nodeport-lb agent snapshot 1\n"
_DIGEST_SIZE = 32


@dataclass(frozen=True)
class SnapshotKey:
    """What the content depends on besides the store's files: any difference, and the
    snapshot is ignored."""

    code: str  # digest of the package's source files (names, sizes, mtimes)
    python: str
    store: str  # real path of the store directory
    node_name: str
    node_port_range: str
    nodeport_cidrs: tuple[str, ...]


def code_digest() -> str:
    """The agent's code as installed: a change to any module gives another digest."""
    root = Path(nodeport_lb.__file__).parent
    h = hashlib.blake2b(digest_size=16)
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                st = os.stat(os.path.join(directory, name))
                h.update(f"{directory}/{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def snapshot_key(
    store: Path, node_name: str, node_port_range: object, nodeport_cidrs: tuple[str, ...]
) -> SnapshotKey:
    return SnapshotKey(
        code=code_digest(),
        python=sys.version,
        store=os.path.realpath(store),
        node_name=node_name,
        node_port_range=str(node_port_range),
        nodeport_cidrs=tuple(nodeport_cidrs),
    )


def write_snapshot(path: Path, key: SnapshotKey, content: dict[str, Any]) -> None:
    """Atomically: a reader sees the previous snapshot or this one, whole."""
    data = pickle.dumps((key, content), protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            _write_all(out, memoryview(MAGIC + digest))
            # no copy of the data (tens of MB at 50,000 Services), in pieces: the GIL is let
            # go between them, so a sync never waits for the whole
            view = memoryview(data)
            for start in range(0, len(view), 1 << 20):
                _write_all(out, view[start : start + (1 << 20)])
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_all(out: Any, view: memoryview) -> None:
    while view:
        view = view[out.write(view) :]  # an unbuffered write may write less than asked


def read_snapshot(path: Path, key: SnapshotKey) -> dict[str, Any] | None:
    """The content of the snapshot at ``path`` if it is whole, the agent's own and made for
    ``key``; None (and why, in the log) otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("snapshot %s ignored: %s", path, exc)
        return None
    with os.fdopen(fd, "rb") as source:
        st = os.fstat(source.fileno())
        # what is unpickled must be what this agent wrote: its own file, nobody else's to write
        if st.st_uid != os.geteuid() or st.st_mode & 0o022:
            log.warning("snapshot %s ignored: not the agent's own (owner or mode)", path)
            return None
        raw = source.read()
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + _DIGEST_SIZE:
        log.warning("snapshot %s ignored: not a snapshot of this format", path)
        return None
    digest = raw[len(MAGIC) : len(MAGIC) + _DIGEST_SIZE]
    data = memoryview(raw)[len(MAGIC) + _DIGEST_SIZE :]
    if hashlib.blake2b(data, digest_size=_DIGEST_SIZE).digest() != digest:
        log.warning("snapshot %s ignored: its digest does not match (cut short or corrupt)", path)
        return None
    try:
        saved_key, content = pickle.loads(data)
    except Exception as exc:  # a digest that matches makes this unlikely, never fatal
        log.warning("snapshot %s ignored: %r", path, exc)
        return None
    if saved_key != key:
        log.info("snapshot %s ignored: made for other code or settings", path)
        return None
    return content
