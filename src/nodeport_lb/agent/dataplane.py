"""Applying rules to the kernel: ``nft -f`` transactions and UDP conntrack clean-up.

The agent keeps in memory exactly what its table holds (it is the only writer of that table),
so a change is a small transaction computed from the difference. A change nft refuses falls
back to a full table replacement; a full replacement nft refuses is bisected with dry runs to
find the Services whose rules it refuses: those keep what they had (or nothing), the others
are applied. Every transaction is atomic, so the kernel never holds half a ruleset and
established connections keep their conntrack NAT bindings throughout.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import random
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence

from nodeport_lb.agent.rules import (
    GENERATION_SET,
    TABLE,
    RuleConfig,
    ServiceRules,
    full_ruleset,
    generation_update,
    partial_update,
    read_generation,
    shared_chains,
)

log = logging.getLogger(__name__)


class NftError(RuntimeError):
    pass


class _LibNftables:
    """libnftables in-process (what the nft command is built on): same parser, same atomic
    transaction, without starting a process for each change (~20 ms saved per sync)."""

    def __init__(self) -> None:
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_output_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_ctx_set_dry_run.argtypes = [ctypes.c_void_p, ctypes.c_bool]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)
        self.lock = threading.Lock()

    def run(self, script: str, check_only: bool = False) -> str:
        with self.lock:
            self.lib.nft_ctx_set_dry_run(self.ctx, check_only)
            try:
                rc = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode())
            finally:
                self.lib.nft_ctx_set_dry_run(self.ctx, False)
            # both read every time: a buffer not read keeps growing
            output = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode(errors="replace")
            error = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode(errors="replace")
        if rc != 0:
            raise NftError(error.strip()[:2000] or f"libnftables returned {rc}")
        return output


# One libnftables context per user: a context keeps a copy of what its last command read or
# wrote (after a full sync, every map element: tens of MB, ~30 ms to free), so the table check
# and the return path get contexts of their own and never make a sync wait for theirs.
SYNC, CHECK, RETURN_PATH = "sync", "check", "return-path"
_contexts: dict[str, _LibNftables] = {}
_contexts_lock = threading.Lock()
_libnftables_missing = False


def _context(name: str) -> _LibNftables | None:
    global _libnftables_missing
    with _contexts_lock:
        if name not in _contexts and not _libnftables_missing:
            try:
                _contexts[name] = _LibNftables()
            except (OSError, AttributeError):
                _libnftables_missing = True
        return _contexts.get(name)


def run_nft(script: str, nft: str = "nft", check_only: bool = False, context: str = SYNC) -> str:
    """One atomic transaction: all of ``script`` or nothing (``nft -f -`` semantics);
    ``check_only``: the kernel checks it and nothing changes (``nft -c``). Returns what nft
    printed (a listing).

    Uses libnftables when the default ``nft`` is asked for and the library loads, else the
    ``nft`` command (e.g. a wrapper given with --nft)."""
    library = _context(context) if nft == "nft" else None
    if library is not None:
        return library.run(script, check_only)
    command = [nft, "-c", "-f", "-"] if check_only else [nft, "-f", "-"]
    proc = subprocess.run(command, input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NftError(proc.stderr.strip()[:2000] or f"nft exited {proc.returncode}")
    return proc.stdout


def table_exists(nft: str = "nft") -> bool:
    """In-process like the syncs: the check must not need a process or the nft binary.

    Lists the names of the chains only: a listing of the table itself fetches every map
    element (~300 ms at 10,000 Services, every sync period)."""
    try:
        listing = run_nft("list chains\n", nft, context=CHECK)
    except NftError:
        return False
    return _lists_chain(listing, TABLE, "nodeports")


def _lists_chain(listing: str, table: str, chain: str) -> bool:
    """Whether ``nft list chains`` output shows ``chain`` in ``table`` ("inet nodeport-lb")."""
    current = None
    for line in listing.splitlines():
        if line.startswith("table "):
            current = line[len("table ") :].removesuffix("{").strip()
        elif current == table and line.strip() == f"chain {chain} {{":
            return True
    return False


def table_generation(nft: str = "nft") -> int | None:
    """The generation number the agent's table holds (None: no table, or none in it)."""
    try:
        listing = run_nft(f"list set {TABLE} {GENERATION_SET}\n", nft, context=CHECK)
    except NftError:
        return None
    return read_generation(listing)


def settle_after_full_sync() -> None:
    """What a full sync leaves behind, given back: the sync context's copy of the table (its
    next command would free it first, ~30 ms added to the first change after a full sync)
    and the C heap it grew (~60 MB at 10,000 Services, kept by malloc until trimmed)."""
    library = _context(SYNC)
    if library is not None:
        with contextlib.suppress(NftError):
            library.run("list chains\n")  # only the chains' names: the old copy is dropped
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def delete_leftover_table(nft: str = "nft") -> bool:
    """Remove the agent's table if a standalone run left one (companion mode: its rules would
    compete with kube-proxy's for the same nodePorts). True when there was one."""
    try:
        if not table_exists(nft):
            return False
    except OSError:
        return False  # no nft on this node: no table either
    run_nft(f"delete table {TABLE}\n", nft)
    return True


class Dataplane:
    def __init__(self, config: RuleConfig, nft: str = "nft", conntrack: str = "conntrack") -> None:
        self.config = config
        self.nft = nft
        self.conntrack = conntrack
        self.applied: dict[str, ServiceRules] = {}
        self._own_rules = 0  # rules of the Services' own chains in ``applied``, kept counted
        self.need_full_sync = True
        self.set_aside: dict[str, str] = {}  # Service key -> what nft said, after a sync
        # the table's generation number after the agent's last transaction; a new agent's
        # first one differs from whatever a table holds (random start)
        self.generation = random.getrandbits(32)

    def _next_generation(self) -> int:
        return (self.generation + 1) & 0xFFFFFFFF

    def export(self) -> dict | None:
        """What the table holds, for a snapshot; None when that is not known (a full sync is
        owed)."""
        if self.need_full_sync:
            return None
        return {
            "applied": dict(self.applied),
            "set_aside": dict(self.set_aside),
            "generation": self.generation,
        }

    def adopt(self, exported: dict) -> None:
        """Take what ``export`` gave as the table's content (the caller checked that the
        table's generation is the exported one): later syncs change it from there."""
        self.applied = exported["applied"]
        self.set_aside = exported["set_aside"]
        self.generation = int(exported["generation"])
        self._own_rules = sum(_rule_count(r) for r in self.applied.values())
        self.need_full_sync = False

    def sync(self, desired: Mapping[str, ServiceRules], changed: set[str] | None) -> str:
        """Bring the table to ``desired``; ``changed`` limits the work to those Services
        (None: everything). Returns the mode used ("full" or "partial"); ``set_aside`` then
        names the Services nft refused, with its message. Raises ``NftError`` only when
        nft refuses even the table without them."""
        if not self.need_full_sync and changed is not None:
            script = partial_update(self.applied, desired, changed)
            generation = self._next_generation()
            try:
                if script:
                    run_nft(script + generation_update(generation, full=False), self.nft)
                    self.generation = generation
            except NftError as exc:
                log.warning("nft refused a partial sync (%s); replacing the whole table", exc)
            else:
                self._record(desired, changed)
                for key in changed:
                    self.set_aside.pop(key, None)
                return "partial"
        self.need_full_sync = True
        self.set_aside = {}
        generation = self._next_generation()
        try:
            run_nft(self._full(desired.values(), generation), self.nft)
        except NftError as exc:
            applied = self._apply_without_refused(desired, exc, generation)
        else:
            applied = dict(desired)
        self.generation = generation
        self._record(applied, set(self.applied) | set(desired))
        # in a thread of its own: the next change must not wait for it (it holds the sync
        # context for a few ms only when a change comes at once)
        threading.Thread(target=settle_after_full_sync, name="nft-settle", daemon=True).start()
        return "full"

    def _record(self, now: Mapping[str, ServiceRules], keys: set[str]) -> None:
        old = {k: self.applied[k] for k in keys if k in self.applied}
        for key in keys:
            if key in old:
                self._own_rules -= _rule_count(old[key])
            if key in now:
                self.applied[key] = now[key]
                self._own_rules += _rule_count(now[key])
            else:
                self.applied.pop(key, None)
        self.need_full_sync = False
        self._flush_stale_udp(old, {k: now[k] for k in keys if k in now})

    def _accepts(self, services: Sequence[ServiceRules]) -> bool:
        try:
            run_nft(full_ruleset(self.config, services), self.nft, check_only=True)
        except NftError:
            return False
        return True

    def _refused(self, desired: Mapping[str, ServiceRules], keys: list[str]) -> list[str]:
        """The keys whose rules nft refuses, by halving: k bad Services among n cost about
        2·k·log2(n) dry runs."""
        if not keys or self._accepts([desired[k] for k in keys]):
            return []
        if len(keys) == 1:
            return keys
        middle = len(keys) // 2
        return self._refused(desired, keys[:middle]) + self._refused(desired, keys[middle:])

    def _full(self, services: Iterable[ServiceRules], generation: int) -> str:
        return full_ruleset(self.config, services) + generation_update(generation, full=True)

    def _apply_without_refused(
        self, desired: Mapping[str, ServiceRules], error: NftError, generation: int
    ) -> dict[str, ServiceRules]:
        if not self._accepts([]):
            raise error  # the table's own frame is refused: no Service is to blame
        refused = self._refused(desired, sorted(desired))
        usable = {k: v for k, v in desired.items() if k not in refused}
        for key in refused:
            try:
                run_nft(full_ruleset(self.config, [desired[key]]), self.nft, check_only=True)
            except NftError as exc:
                self.set_aside[key] = str(exc)
            else:
                self.set_aside[key] = str(error)
            previous = self.applied.get(key)
            kept = False
            if previous is not None and self._accepts([previous]):
                usable[key] = previous  # its last good rules stay in force
                kept = True
            log.error(
                "nft refused the rules of Service %s; set aside (%s), the others applied: %s",
                key,
                "its previous rules kept" if kept else "no rules",
                self.set_aside[key],
            )
        run_nft(self._full(usable.values(), generation), self.nft)
        return usable

    def _flush_stale_udp(
        self, old: Mapping[str, ServiceRules], new: Mapping[str, ServiceRules]
    ) -> None:
        """UDP has no connection end: conntrack would keep sending a flow to a removed
        endpoint (or keep an un-NATed entry from before endpoints existed) until it expires."""
        # the UDP ports only (the protocol is part of the key): a full sync at 10,000 TCP
        # Services has nothing to do here and should not build maps of all their ports
        new_ports = {p.map_key: p for r in new.values() for p in r.ports if p.protocol == "udp"}
        old_ports = {p.map_key: p for r in old.values() for p in r.ports if p.protocol == "udp"}
        for port in old_ports.values():
            now = new_ports.get(port.map_key)
            remaining = now.usable_addresses if now else frozenset()
            for address in sorted(port.usable_addresses - remaining):
                self._conntrack_delete(
                    "--orig-port-dst", str(port.node_port), "--reply-src", address
                )
        for key, port in new_ports.items():
            before = old_ports.get(key)
            if port.usable_addresses and not (before and before.usable_addresses):
                self._conntrack_delete("--orig-port-dst", str(port.node_port))

    def _conntrack_delete(self, *selector: str) -> None:
        proc = subprocess.run(
            [self.conntrack, "-D", "-p", "udp", *selector], capture_output=True, text=True
        )
        # exit 1 with "0 flow entries" just means there was nothing to delete
        if proc.returncode not in (0, 1):
            log.warning("conntrack -D %s failed: %s", " ".join(selector), proc.stderr.strip())

    def rule_count(self) -> int:
        """Rules in the table: the Services' own chains, and the shared picking chains that
        every table has once it was loaded (most Services have no rule of their own)."""
        shared = sum(len(r) for r in shared_chains().values()) if not self.need_full_sync else 0
        return self._own_rules + shared


def _rule_count(rules: ServiceRules) -> int:
    """The rules of ``rules.chains()``, without making that dict (most ports own no chain:
    a full sync at 10,000 Services counted 20,000 of them)."""
    return sum(
        len(port.rules) + sum(len(chain) for chain in port.extra_chains.values())
        for port in rules.ports
    )
