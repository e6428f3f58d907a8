"""Where the agent's objects come from: the manifest store or the Kubernetes API.

Both sources push the same raw objects (as ``kubectl get -o yaml`` prints them) into one
``ChangeQueue``; the sync loop takes batches from it. Nothing downstream knows which source
an object came from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import os
import select
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.store import (
    MAX_NESTING,
    Changes,
    IncrementalStoreReader,
    ManifestError,
    ManifestStore,
    ObjectKey,
    StoreChanges,
    StoreError,
    StoreUnreadableError,
    check_nesting,
    object_key,
)

log = logging.getLogger(__name__)


@dataclass
class Batch(Changes):
    """The changes queued since the last ``take``."""

    queued_at: float = 0.0  # monotonic time of the oldest change in the batch


class ChangeQueue:
    """Changes waiting for the sync loop; later changes to an object replace earlier ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._batch = Batch()
        self._pending = False

    def put(self, changes: Changes) -> None:
        if not changes:
            return
        with self._cond:
            if not self._pending:
                self._batch.queued_at = time.monotonic()
                self._pending = True
            for key, obj in changes.upserts.items():
                self._batch.deletes.discard(key)
                self._batch.upserts[key] = obj
                if key in changes.origins:
                    self._batch.origins[key] = changes.origins[key]
            for key in changes.deletes:
                self._batch.upserts.pop(key, None)
                self._batch.deletes.add(key)
            self._cond.notify_all()

    def take(self, timeout: float) -> Batch | None:
        """The pending batch, waiting up to ``timeout`` seconds for one."""
        with self._cond:
            if not self._pending:
                self._cond.wait(timeout)
            if not self._pending:
                return None
            batch, self._batch, self._pending = self._batch, Batch(), False
            return batch

    def oldest_pending(self) -> float | None:
        """Monotonic time of the oldest change not yet taken, for the agent's health."""
        with self._cond:
            return self._batch.queued_at if self._pending else None


# --- manifest store --------------------------------------------------------------------------

IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
# not IN_CREATE: a file being written is read once it is closed, never half-written
_WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE
_EVENT_HEADER = struct.Struct("iIII")


class _Inotify:
    """Directory change notifications through libc (no dependency); None when unavailable."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = _WATCH_MASK | IN_DELETE_SELF | IN_MOVE_SELF
        if libc.inotify_add_watch(self.fd, os.fsencode(directory), mask) < 0:
            errno = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(errno, f"inotify_add_watch {directory}")

    def read(self, timeout: float) -> tuple[set[str], bool]:
        """Names changed within ``timeout``, and whether a full rescan is needed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        names: set[str] = set()
        rescan = False
        while ready:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                _wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
                raw = data[offset + _EVENT_HEADER.size : offset + _EVENT_HEADER.size + length]
                offset += _EVENT_HEADER.size + length
                if mask & (IN_Q_OVERFLOW | IN_DELETE_SELF | IN_MOVE_SELF):
                    rescan = True
                name = raw.rstrip(b"\0").decode(errors="surrogateescape")
                if name:
                    names.add(name)
        return names, rescan

    def close(self) -> None:
        os.close(self.fd)


class SourceStatus:
    """Whether a source has listed everything once, and whether its last listing failed.

    The agent replaces its table only after one complete listing: before it, the objects it
    knows may be a part of the truth, and a table built from a part deletes the rest."""

    def __init__(self, metrics: AgentMetrics, what: str) -> None:
        self.metrics = metrics
        self.what = what
        self.listed = threading.Event()
        self.error: str | None = None

    def succeeded(self) -> None:
        if self.error is not None:
            log.info("%s: readable again", self.what)
        self.error = None
        self.listed.set()
        self.metrics.source_healthy.set(1)

    def failed(self, message: str) -> None:
        self.metrics.source_errors.inc()
        self.metrics.source_healthy.set(0)
        if message != self.error:
            state = "last good state kept" if self.listed.is_set() else "nothing synced yet"
            log.error("%s: %s (%s; retrying)", self.what, message, state)
        self.error = message


class StoreSource:
    """Watches a manifest store directory (inotify, else a fast poll) and queues its changes.

    Only files that changed are parsed again; a full rescan (stat of every file) runs every
    ``rescan_period`` as a safety net against lost events.
    """

    POLL_INTERVAL = 0.05

    def __init__(
        self,
        store: ManifestStore,
        queue: ChangeQueue,
        metrics: AgentMetrics,
        rescan_period: float,
    ) -> None:
        self.reader = IncrementalStoreReader(store)
        self.queue = queue
        self.metrics = metrics
        self.rescan_period = rescan_period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store", daemon=True)
        self._reported: dict[Path, str] = {}
        self._watcher: _Inotify | None = None  # made before the first listing, for the thread
        self.status = SourceStatus(metrics, f"store {store.path}")
        # held while the reader changes and what it found is queued: whoever holds it and
        # finds the queue empty sees a reader whose every change has reached the state
        self.lock = threading.Lock()

    def synced(self) -> bool:
        return self.status.listed.is_set()

    # files read per part of the first listing
    PART_FILES = 2000

    def initial_load(self, between_parts: Callable[[], None] | None = None) -> None:
        """The first listing; with ``between_parts``, queued a part at a time, calling it
        after each (the agent applies the part then, so the objects of every file are never
        all in memory at once)."""
        # the watch first: what changes while the listing is read comes as an event, so the
        # thread need not list every file again as it starts (at 20,000 files, a second
        # listing in the middle of the first sync)
        try:
            self._watcher = _Inotify(self.reader.store.path)
        except OSError:
            self._watcher = None  # the thread finds out why, and polls
        if between_parts is None:
            self._refresh(None)
            return
        complete = True
        try:
            for changes in self.reader.refresh_in_parts(self.PART_FILES):
                self._report(changes.errors)
                complete = complete and changes.complete
                self._queue_changes(changes)
                between_parts()
        except StoreUnreadableError as exc:
            self.status.failed(str(exc))
            return
        if complete:
            self.status.succeeded()
        else:
            self.status.failed("some files could not be read")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _refresh(self, only: set[Path] | None) -> None:
        with self.lock:
            try:
                changes = self.reader.refresh(only)
            except StoreUnreadableError as exc:
                self.status.failed(str(exc))
                return
            self._report(changes.errors)
            if only is None:
                if changes.complete:
                    self.status.succeeded()
                else:
                    self.status.failed("some files could not be read")
            self._queue_changes(changes)

    def _report(self, errors: list[StoreError]) -> None:
        for error in errors:
            self.metrics.store_errors.inc()
            if self._reported.get(error.path) != error.message:
                log.warning("store: %s (ignored; last good state kept)", error)
                self._reported[error.path] = error.message

    def _queue_changes(self, changes: StoreChanges) -> None:
        origins = {key: self.reader.origin_of(key) for key in changes.upserts}
        self.queue.put(Changes(changes.upserts, changes.deletes, origins))

    def _run(self) -> None:
        """Never ends while the agent runs: an unexpected error is logged, counted and the
        watch starts over (a dead store thread would freeze every Service's state)."""
        while not self._stop.is_set():
            watched = self.metrics.run_step(
                "store", self._watch_directory, log, "store: unexpected error; watching again in 1s"
            )
            if not watched:
                self._stop.wait(1.0)

    def _watch_directory(self) -> None:
        directory = self.reader.store.path
        watcher, self._watcher = self._watcher, None
        listed = watcher is not None  # watched since before the first listing
        if watcher is None:
            try:
                watcher = _Inotify(directory)
            except OSError as exc:
                log.warning("store: no inotify on %s (%s); polling", directory, exc)
                self._poll(directory)
                return
        try:
            self._watch(watcher, listed)
        finally:
            watcher.close()

    def _watch(self, watcher: _Inotify, listed: bool = False) -> None:
        if not listed:
            self._refresh(None)  # catch what changed before the watch existed
        next_rescan = time.monotonic() + self._listing_interval()
        while not self._stop.is_set():
            names, rescan = watcher.read(min(1.0, self.rescan_period))
            if rescan or time.monotonic() >= next_rescan:
                self._refresh(None)
                next_rescan = time.monotonic() + self._listing_interval()
                if rescan:
                    return  # directory replaced: watch it again
            elif names:
                self._refresh({self.reader.store.path / name for name in names})

    def _poll(self, directory: Path) -> None:
        """Without inotify (or before the directory exists): stat the directory itself; list
        it again every rescan period, or every second while listing fails."""
        last: tuple[int, int] | None = None
        next_listing = time.monotonic() + self._listing_interval()
        while not self._stop.wait(self.POLL_INTERVAL):
            try:
                st = directory.stat()
                signature: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
            except OSError:
                signature = None
            if signature != last or time.monotonic() >= next_listing:
                last = signature
                self._refresh(None)
                next_listing = time.monotonic() + self._listing_interval()
                if signature is not None and self.status.error is None:
                    return  # the directory is readable now: try inotify again

    def _listing_interval(self) -> float:
        return min(1.0, self.rescan_period) if self.status.error else self.rescan_period


# --- Kubernetes API --------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchedResource:
    kind: str
    api_version: str
    path: str  # collection URL path
    field_selector: str = ""


def watched_resources(node_name: str) -> list[WatchedResource]:
    return [
        WatchedResource("Service", "v1", "/api/v1/services"),
        WatchedResource(
            "EndpointSlice", "discovery.k8s.io/v1", "/apis/discovery.k8s.io/v1/endpointslices"
        ),
        WatchedResource("Node", "v1", "/api/v1/nodes", f"metadata.name={node_name}"),
    ]


class KubeSource:
    """List+watch Services, EndpointSlices and this node's Node object; relist on expiry (410)
    or any error, with exponential back-off. Objects are kept as raw JSON, like the store."""

    WATCH_TIMEOUT = 300
    MAX_BACKOFF = 30.0

    def __init__(
        self, kubeconfig: str, node_name: str, queue: ChangeQueue, metrics: AgentMetrics
    ) -> None:
        # imported here: the kubernetes client is slow to import, and store-only hosts never
        # need it
        from nodeport_lb.kube_client import KubeSettings, new_api_client

        self.api = new_api_client(KubeSettings.resolve({"kubeconfig": kubeconfig}))
        self.queue = queue
        self.metrics = metrics
        self.resources = watched_resources(node_name)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(r,), name=f"watch-{r.kind}", daemon=True)
            for r in self.resources
        ]
        self._listed = {r.kind: threading.Event() for r in self.resources}
        self.status = SourceStatus(metrics, "kubernetes API")

    def synced(self) -> bool:
        return all(listed.is_set() for listed in self._listed.values())

    def initial_load(self, between_parts: Callable[[], None] | None = None) -> None:
        """Start the watchers and wait (up to a minute) until each has listed once; the
        agent syncs nothing before that, however long it takes. (``between_parts``: unused,
        a listing from the API server comes in one piece.)"""
        for thread in self._threads:
            thread.start()
        deadline = time.monotonic() + 60
        for kind, listed in self._listed.items():
            if not listed.wait(max(0.0, deadline - time.monotonic())):
                log.warning("kubernetes: %s not listed yet; the table stays as it is", kind)

    def start(self) -> None:
        pass  # started by initial_load

    def stop(self) -> None:
        self._stop.set()

    def _run(self, resource: WatchedResource) -> None:
        known: set[ObjectKey] = set()
        backoff = 0.5
        first = True
        while not self._stop.is_set():
            try:
                version = self._list(resource, known)
                if first:
                    first = False
                    self._listed[resource.kind].set()
                if self.synced():
                    self.status.succeeded()
                backoff = 0.5
                while not self._stop.is_set():  # a watch that times out resumes where it was
                    version = self._watch(resource, known, version)
            except Exception as exc:  # any failure: count, back off, relist
                self.metrics.watch_errors.labels(resource.kind).inc()
                self.status.failed(f"{resource.kind} list/watch failed")
                log.warning(
                    "kubernetes: %s list/watch failed: %s; retrying in %.1fs",
                    resource.kind,
                    exc,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.MAX_BACKOFF)

    def _request(self, resource: WatchedResource, **query: Any):
        """GET on the API with the kubeconfig's TLS and credentials, body not preloaded (a
        watch is a stream). Uses the client's connection pool directly: the generated
        ``call_api`` changed signature across kubernetes client versions."""
        import urllib3

        cfg = self.api.configuration
        if getattr(cfg, "refresh_api_key_hook", None):
            cfg.refresh_api_key_hook(cfg)  # exec/OIDC credentials
        headers = {"Accept": "application/json"}
        token = cfg.api_key.get("authorization") or cfg.api_key.get("BearerToken")
        if token:
            headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        params = {k: v for k, v in query.items() if v not in (None, "")}
        if resource.field_selector:
            params["fieldSelector"] = resource.field_selector
        url = f"{cfg.host.rstrip('/')}{resource.path}?{urlencode(params)}"
        response = self.api.rest_client.pool_manager.request(
            "GET",
            url,
            headers=headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=self.WATCH_TIMEOUT + 30),
        )
        if response.status != 200:
            detail = response.read(500).decode(errors="replace")
            response.release_conn()
            raise RuntimeError(f"GET {resource.path}: HTTP {response.status}: {detail}")
        return response

    def _list(self, resource: WatchedResource, known: set[ObjectKey]) -> str:
        response = self._request(resource)
        try:
            body = json.loads(response.read())
        finally:
            response.release_conn()
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise RuntimeError(f"GET {resource.path}: not a list")
        objects = {}
        for item in items:
            if not _usable(item, resource):
                continue
            objects[object_key(item)] = item
        gone = known - set(objects)
        known.clear()
        known.update(objects)
        self.queue.put(Changes(objects, gone, dict.fromkeys(objects, "kubernetes API")))
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, resource: WatchedResource, known: set[ObjectKey], version: str) -> str:
        """Apply watch events until the server ends the watch; returns the last version."""
        response = self._request(
            resource,
            watch="true",
            resourceVersion=version,
            allowWatchBookmarks="true",
            timeoutSeconds=str(self.WATCH_TIMEOUT),
        )
        try:
            for event in _json_lines(response.stream(4096)):
                if self._stop.is_set():
                    break
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise RuntimeError(f"watch error: {obj.get('message') or obj}")  # 410: relist
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                if not _usable(obj, resource):
                    continue
                key = object_key(obj)
                if kind == "DELETED":
                    known.discard(key)
                    self.queue.put(Changes(deletes={key}))
                else:
                    known.add(key)
                    self.queue.put(Changes({key: obj}, origins={key: "kubernetes API"}))
        finally:
            response.release_conn()
        return version


def _usable(obj: Any, resource: WatchedResource) -> bool:
    """An object of the kind asked for and of bounded depth (set aside alone otherwise)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
        log.warning("kubernetes: %s: an item that is not an object, set aside", resource.kind)
        return False
    try:
        check_nesting(obj)
    except ManifestError:
        log.warning(
            "kubernetes: %s %s nested deeper than %d levels, set aside",
            resource.kind,
            obj["metadata"].get("name"),
            MAX_NESTING,
        )
        return False
    obj.setdefault("kind", resource.kind)
    obj.setdefault("apiVersion", resource.api_version)
    return True


def _json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
