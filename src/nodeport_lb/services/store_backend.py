"""Services in the manifest store, with node ports allocated the way the API server does."""

from __future__ import annotations

import contextlib
import datetime
import uuid
from typing import Any

from nodeport_lb.allocation import RangeFullError, allocate, ports_held_by_others
from nodeport_lb.model import NodePortRange
from nodeport_lb.services.base import ApplyResult, InvalidService, owned_view
from nodeport_lb.store import ManifestStore, ObjectKey


class StoreBackend:
    def __init__(self, path: str, node_port_range: NodePortRange) -> None:
        self.store = ManifestStore(path)
        self.node_port_range = node_port_range

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get("Service", namespace, name)

    def list(self) -> list[dict[str, Any]]:
        return self.store.load().of_kind("Service")

    def apply(
        self, manifest: dict[str, Any], check_mode: bool = False, force_conflicts: bool = False
    ) -> ApplyResult:
        """Create or update; ``force_conflicts`` is accepted for the modules' sake: a store has
        no field managers, so there is nothing to conflict with."""
        meta = manifest["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        # The lock spans read, allocation and write, so two runs never hand out one port twice.
        with self._locked(check_mode):
            contents = self.store.load()
            current = contents.objects.get(ObjectKey("Service", namespace, name))
            others = ports_held_by_others(contents.of_kind("Service"), namespace, name)
            try:
                # Deterministic for a given store: check mode reports the ports a run allocates.
                allocated, errors = allocate(manifest, current, others, self.node_port_range)
            except RangeFullError as exc:
                raise InvalidService([str(exc)], name) from None
            if errors:
                raise InvalidService(errors, name)
            desired = self._stored_form(allocated, current, invent_identity=not check_mode)
            changed = owned_view(desired) != owned_view(current)
            if changed and not check_mode:
                self.store.write(desired)
        return ApplyResult(changed, current, desired)

    def delete(self, namespace: str, name: str, check_mode: bool = False) -> ApplyResult:
        with self._locked(check_mode):
            current = self.get(namespace, name)
            if current and not check_mode:
                self.store.delete("Service", namespace, name)
        return ApplyResult(current is not None, current, None)

    def _locked(self, check_mode: bool) -> contextlib.AbstractContextManager[object]:
        """Check mode writes nothing, not even the store directory or its lock file: it reads
        a snapshot (every write is an atomic rename, so each file reads whole)."""
        return contextlib.nullcontext() if check_mode else self.store.locked()

    @staticmethod
    def _stored_form(
        manifest: dict[str, Any], current: dict[str, Any] | None, invent_identity: bool
    ) -> dict[str, Any]:
        """The object as the store keeps it: identity fields kept from the stored version, and
        made up only when the object is really written (never shown invented in a diff)."""
        current_meta = (current or {}).get("metadata") or {}
        meta = dict(manifest["metadata"])
        for key in ("uid", "creationTimestamp"):
            if current_meta.get(key):
                meta[key] = current_meta[key]
        if invent_identity:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp",
                datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        return {**manifest, "metadata": meta}
