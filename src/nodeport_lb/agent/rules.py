"""From Services and their endpoints to nftables rules: pure computation, no kernel.

Layout of the agent's own table (``table inet nodeport-lb``), chosen so that the per-packet
cost does not grow with the number of Services, and so that a change to one Service is a few
map elements — not chains — at any number of Services:

- ``nodeport-services``: one verdict map keyed on ``meta l4proto . th dport`` whose value is
  ``goto`` the chain that handles the Service port; base chains in prerouting (traffic from
  outside) and output (locally originated) look it up for packets to a local address matched
  by ``--nodeport-addresses``.
- ``nodeport-endpoints-N`` (N = 1..64): data maps keyed on ``meta l4proto . th dport . slot``
  holding the usable endpoints (address . port) of each Service port that has N of them, in
  slots 0..N-1; ``nodeport-no-endpoints``: the ports with no usable endpoint anywhere.
- two shared chains pick an endpoint uniformly: ``masq-pick`` (eTP Cluster: the masquerade
  mark first) and ``pick`` (eTP Local). Each tries ``numgen random mod N`` as the slot in the
  map of N endpoints, N = 1, 2, ...: a port's slots are in one of those maps only, so the
  lookups before it miss and the one of its map picks. A port in none of them rejects
  (``no-endpoints``: kube-proxy tells the client at once) or, eTP Local with endpoints on other
  nodes only, drops (the LB must not send here). So the verdict map element of a port depends
  on its Service's settings only, and a change of endpoints — their number too — is data map
  elements only: a verdict element that jumps is what makes the kernel validate the whole
  table again (every element of the verdict map, once per base chain: 1.5 ms per change at
  10,000 Services, 25 ms at 50,000). Most Service ports need no chain of their own:
  nftables' userspace lists every chain of the ruleset before each transaction, so 10,000
  per-Service chains cost ~5 ms per change however small it is.
- a chain of its own only for a Service port that needs rules of its own: source ranges
  (a firewall chain it jumps to), ClientIP affinity (timed sets per endpoint), or more
  endpoints than the shared chains cover — one DNAT rule per endpoint in iptables' cascade
  style. Deliberately no anonymous sets or maps: the kernel names each one by scanning all
  sets of the table, which makes 10,000 of them take minutes to load.
- ``nat-postrouting`` masquerades packets carrying the 0x4000 mark (kube-proxy's bit).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nodeport_lb.agent.endpoints import (
    Endpoint,
    SliceEndpoints,
    endpoints_for_port,
    local_ready_count,
    usable_endpoints,
)
from nodeport_lb.model import Service

TABLE = "inet nodeport-lb"
NODEPORT_MAP = "nodeport-services"
NODEPORT_ADDRESSES_SET = "nodeport-addresses"
NO_ENDPOINTS_SET = "nodeport-no-endpoints"
# one number, changed by every transaction of the agent's: what its table holds is known to be
# what the agent last wrote when the number is the one it last wrote (a restart's snapshot)
GENERATION_SET = "nodeport-generation"
MASQUERADE_MARK = 0x4000
NO_ENDPOINTS_CHAIN = "no-endpoints"
PICK_CHAIN = "pick"  # eTP Local
MASQ_PICK_CHAIN = "masq-pick"  # eTP Cluster
# the shared chains pick among 1..SHARED_MAX_ENDPOINTS endpoints; beyond, a port gets its own
SHARED_MAX_ENDPOINTS = 64


def endpoints_map(endpoints: int) -> str:
    """The map holding the slots of the ports that have ``endpoints`` usable endpoints."""
    return f"nodeport-endpoints-{endpoints}"


def pick_chain(masquerade: bool) -> str:
    return MASQ_PICK_CHAIN if masquerade else PICK_CHAIN


def _picks() -> tuple[str, ...]:
    return tuple(
        f"dnat ip to meta l4proto . th dport . numgen random mod {n} map @{endpoints_map(n)}"
        for n in range(1, SHARED_MAX_ENDPOINTS + 1)
    )


def shared_chains() -> dict[str, tuple[str, ...]]:
    """The chains every table has, whatever its Services (declared by each full sync)."""
    return {
        # no endpoint anywhere: tell the client at once, as kube-proxy does
        NO_ENDPOINTS_CHAIN: ("meta l4proto tcp reject with tcp reset", "reject"),
        # eTP Local: no local endpoint but some elsewhere: drop (the LB must not send here)
        PICK_CHAIN: (
            *_picks(),
            f"meta l4proto . th dport @{NO_ENDPOINTS_SET} goto {NO_ENDPOINTS_CHAIN}",
            "drop",
        ),
        MASQ_PICK_CHAIN: (
            f"meta mark set meta mark | {MASQUERADE_MARK:#x}",
            *_picks(),
            f"goto {NO_ENDPOINTS_CHAIN}",
        ),
    }


@dataclass(frozen=True)
class RuleConfig:
    node_name: str
    # empty: every local address (kube-proxy's default), loopback excluded as in its nftables mode
    nodeport_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortRules:
    """What one Service port puts in the table."""

    protocol: str  # nft spelling: tcp, udp, sctp
    node_port: int
    chain: str  # where the nodePort's verdict map element goes
    rules: tuple[str, ...]  # the chain's rules; () when ``chain`` is a shared one
    # helper chains (source-range check) and affinity sets this port owns
    extra_chains: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    affinity_sets: Mapping[str, int] = field(default_factory=dict)  # name -> timeout seconds
    usable_addresses: frozenset[str] = frozenset()
    # slot elements of the endpoints map ``endpoints_map``: ("tcp . 31000 . 0", "10.1.0.5 .
    # 8080"), ...
    endpoint_elements: tuple[tuple[str, str], ...] = ()
    endpoints_map: str = ""
    no_endpoints: bool = False  # a shared chain's port without any usable endpoint

    @property
    def map_key(self) -> tuple[str, int]:
        return (self.protocol, self.node_port)

    @property
    def owns_chain(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class ServiceRules:
    """Everything one Service contributes: its ports' rules and what the health servers say."""

    key: str  # namespace/name
    namespace: str
    name: str
    ports: tuple[PortRules, ...]
    health_check_node_port: int  # 0: no hcnp server (not LoadBalancer + Local)
    local_ready_endpoints: int

    def chains(self) -> dict[str, tuple[str, ...]]:
        chains: dict[str, tuple[str, ...]] = {}
        for port in self.ports:
            chains.update(port.extra_chains)
            if port.owns_chain:
                chains[port.chain] = port.rules
        return chains

    def endpoint_elements(self) -> dict[tuple[str, str], str]:
        """(map, slot key) -> endpoint."""
        return {
            (port.endpoints_map, key): value
            for port in self.ports
            for key, value in port.endpoint_elements
        }

    def no_endpoint_ports(self) -> set[str]:
        """The elements of the no-endpoints set ("tcp . 31000")."""
        return {f"{p.protocol} . {p.node_port}" for p in self.ports if p.no_endpoints}

    def sets(self) -> dict[str, int]:
        return {name: t for port in self.ports for name, t in port.affinity_sets.items()}

    def map_elements(self) -> dict[tuple[str, int], str]:
        return {port.map_key: port.chain for port in self.ports}


def short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return base64.b32encode(digest)[:8].decode()


def compute_service_rules(
    service: Service,
    slices: Iterable[SliceEndpoints],
    config: RuleConfig,
    blocked_ports: frozenset[tuple[str, int]] = frozenset(),
) -> ServiceRules:
    """The rules of one Service (ports in ``blocked_ports`` belong to another Service)."""
    slices = list(slices)
    ports: list[PortRules] = []
    all_endpoints: list[Endpoint] = []
    for port in service.ports:
        endpoints = endpoints_for_port(slices, port.name, port.protocol)
        all_endpoints += endpoints
        protocol = port.protocol.lower()
        if not port.node_port or (protocol, port.node_port) in blocked_ports:
            continue
        ports.append(
            _port_rules(
                service, port.name or str(port.port), protocol, port.node_port, endpoints, config
            )
        )
    return ServiceRules(
        key=service.key,
        namespace=service.namespace,
        name=service.name,
        ports=tuple(ports),
        health_check_node_port=service.health_check_node_port if service.needs_health_check else 0,
        local_ready_endpoints=local_ready_count(all_endpoints, config.node_name),
    )


def _port_rules(
    service: Service,
    port_id: str,
    protocol: str,
    node_port: int,
    endpoints: list[Endpoint],
    config: RuleConfig,
) -> PortRules:
    cluster_usable = usable_endpoints(endpoints)
    if service.is_local:
        chosen = usable_endpoints(e for e in endpoints if e.node_name == config.node_name)
    else:
        chosen = cluster_usable
    needs_own_chain = (
        service.load_balancer_source_ranges
        or (chosen and service.session_affinity == "ClientIP")
        or len(chosen) > SHARED_MAX_ENDPOINTS
    )
    if not needs_own_chain:
        return PortRules(
            protocol=protocol,
            node_port=node_port,
            chain=pick_chain(masquerade=not service.is_local),
            rules=(),
            usable_addresses=frozenset(e.address for e in chosen),
            endpoint_elements=tuple(
                (f"{protocol} . {node_port} . {slot}", f"{e.address} . {e.port}")
                for slot, e in enumerate(chosen)
            ),
            endpoints_map=endpoints_map(len(chosen)) if chosen else "",
            no_endpoints=not cluster_usable,
        )

    readable = f"{service.namespace}/{service.name}/{protocol}/{port_id}"
    tag = short_hash(readable)
    chain = f"svc-{tag}-{readable}"
    rules: list[str] = []
    extra_chains: dict[str, tuple[str, ...]] = {}
    if service.load_balancer_source_ranges:
        firewall = f"fw-{tag}-{readable}"
        extra_chains[firewall] = (
            *(
                f"ip saddr {cidr} return"
                for cidr in service.load_balancer_source_ranges
                if ":" not in cidr
            ),
            "drop",
        )
        rules.append(f"jump {firewall}")

    affinity_sets: dict[str, int] = {}
    if not cluster_usable:
        # no endpoint anywhere: tell the client at once, as kube-proxy does
        if protocol == "tcp":
            rules.append("meta l4proto tcp reject with tcp reset")
        rules.append("reject")
    elif not chosen:
        rules.append("drop")  # eTP Local without a local endpoint: the LB must not send here
    else:
        if not service.is_local:
            rules.append(f"meta mark set meta mark | {MASQUERADE_MARK:#x}")
        dnat = {e: f"meta l4proto {protocol} dnat ip to {e.address}:{e.port}" for e in chosen}
        if service.session_affinity == "ClientIP":
            timeout = service.session_affinity_timeout or 10800
            sets = {
                e: f"aff-{tag}-{short_hash(e.address, str(e.port), str(timeout))}" for e in chosen
            }
            affinity_sets = {name: timeout for name in sets.values()}
            # a known client goes back to its endpoint and refreshes its timeout
            rules += [
                f"ip saddr @{sets[e]} update @{sets[e]} {{ ip saddr }} {dnat[e]}" for e in chosen
            ]
            dnat = {e: f"update @{sets[e]} {{ ip saddr }} {dnat[e]}" for e in chosen}
        rules += _random_cascade([dnat[e] for e in chosen])
    return PortRules(
        protocol=protocol,
        node_port=node_port,
        chain=chain,
        rules=tuple(rules),
        extra_chains=extra_chains,
        affinity_sets=affinity_sets,
        usable_addresses=frozenset(e.address for e in chosen),
    )


def _random_cascade(actions: list[str]) -> list[str]:
    """Pick one action uniformly: rule i matches with probability 1/(n-i) (iptables' way)."""
    n = len(actions)
    return [
        f"numgen random mod {n - i} == 0 {action}" if i < n - 1 else action
        for i, action in enumerate(actions)
    ]


# --- the whole table and changes to it -------------------------------------------------------


def _base_chains(config: RuleConfig) -> dict[str, str]:
    if config.nodeport_cidrs:
        match = f"ip daddr @{NODEPORT_ADDRESSES_SET} fib daddr type local"
    else:
        match = "fib daddr type local ip daddr != 127.0.0.0/8"
    mark = f"{MASQUERADE_MARK:#x}"
    # Plain masquerade, not kube-proxy's "fully-random": since the kernel dropped its
    # sequential port rover (Linux 5.0), a port that must change is drawn at a random offset
    # anyway, which is what fully-random was for (two flows racing to the same port and one
    # lost at conntrack insertion). What fully-random adds is never keeping the client's port,
    # so flows from different client tuples land on a tuple the pod still holds in TIME_WAIT,
    # with a TCP timestamp offset of another tuple: PAWS drops their SYNs and the client waits
    # a second to retry. Keeping the port reuses a tuple only for the same client flow.
    return {
        "nat-prerouting": "type nat hook prerouting priority dstnat; policy accept;\n"
        "\t\tjump nodeports",
        "nat-output": "type nat hook output priority -100; policy accept;\n\t\tjump nodeports",
        "nat-postrouting": "type nat hook postrouting priority srcnat; policy accept;\n"
        f"\t\tmeta mark & {mark} == {mark} meta mark set meta mark ^ {mark} masquerade",
        "nodeports": f"{match} meta l4proto . th dport vmap @{NODEPORT_MAP}",
    }


# the slot is numgen's value: a 32-bit integer, so the key is declared by example (typeof)
_ENDPOINTS_MAP_TYPE = "typeof meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport;"


def _chain_block(name: str, rules: Iterable[str]) -> str:
    return f"\tchain {name} {{\n" + "".join(f"\t\t{r}\n" for r in rules) + "\t}"


def _set_declaration(timeout: int) -> str:
    return f"type ipv4_addr; flags dynamic,timeout; timeout {timeout}s;"


def full_ruleset(config: RuleConfig, services: Iterable[ServiceRules]) -> str:
    """One ``nft -f`` file that replaces the agent's table atomically (others untouched)."""
    out = [f"add table {TABLE}", f"delete table {TABLE}", f"table {TABLE} {{"]
    if config.nodeport_cidrs:
        out.append(
            f"\tset {NODEPORT_ADDRESSES_SET} {{\n\t\ttype ipv4_addr; flags interval;\n"
            f"\t\telements = {{ {', '.join(config.nodeport_cidrs)} }}\n\t}}"
        )
    elements: list[str] = []
    endpoints: dict[str, list[str]] = {}
    no_endpoints: list[str] = []
    body: list[str] = []
    for service in services:
        for name, timeout in service.sets().items():
            out.append(f"\tset {name} {{ {_set_declaration(timeout)} }}")
        for name, rules in service.chains().items():
            body.append(_chain_block(name, rules))
        for port in service.ports:
            elements.append(f"{port.protocol} . {port.node_port} : goto {port.chain}")
            if port.endpoint_elements:
                endpoints.setdefault(port.endpoints_map, []).extend(
                    f"{k} : {v}" for k, v in port.endpoint_elements
                )
            if port.no_endpoints:
                no_endpoints.append(f"{port.protocol} . {port.node_port}")
    # The maps are filled after the table, in the same transaction: the kernel checks every
    # element of a map each time a chain's rule starts using it, so filling them before the
    # chains that use them are added walked them once per chain.
    out += [
        f"\tmap {endpoints_map(n)} {{\n\t\t{_ENDPOINTS_MAP_TYPE}\n\t}}"
        for n in range(1, SHARED_MAX_ENDPOINTS + 1)
    ]
    out.append(f"\tset {NO_ENDPOINTS_SET} {{\n\t\ttype inet_proto . inet_service;\n\t}}")
    out.append(f"\tset {GENERATION_SET} {{\n\t\ttype mark;\n\t}}")
    out += [_chain_block(name, rules) for name, rules in shared_chains().items()]
    out.append(f"\tmap {NODEPORT_MAP} {{\n\t\ttype inet_proto . inet_service : verdict;\n\t}}")
    out += [f"\tchain {name} {{\n\t\t{text}\n\t}}" for name, text in _base_chains(config).items()]
    out += body
    out.append("}")
    for name, items in sorted(endpoints.items()):
        out.append(f"add element {TABLE} {name} {{\n\t" + ",\n\t".join(items) + "\n}")
    if no_endpoints:
        out.append(
            f"add element {TABLE} {NO_ENDPOINTS_SET} {{\n\t" + ",\n\t".join(no_endpoints) + "\n}"
        )
    if elements:
        out.append(f"add element {TABLE} {NODEPORT_MAP} {{\n\t" + ",\n\t".join(elements) + "\n}")
    return "\n".join(out) + "\n"


def generation_update(generation: int, full: bool) -> str:
    """The statements that make ``generation`` the table's number, in the same transaction
    as the rest of a full replacement (``full``) or of a change."""
    flush = "" if full else f"flush set {TABLE} {GENERATION_SET}\n"
    return flush + f"add element {TABLE} {GENERATION_SET} {{ {generation:#x} }}\n"


def read_generation(listing: str) -> int | None:
    """The number in ``nft list set`` output of the generation set; None without one."""
    found = re.search(r"elements = \{ (0x[0-9a-f]+|\d+) \}", listing)
    return int(found.group(1), 0) if found else None


@dataclass
class _TableContent:
    """What some Services put in the table, gathered: either side of a partial update."""

    chains: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sets: dict[str, int] = field(default_factory=dict)
    elements: dict[tuple[str, int], str] = field(default_factory=dict)  # verdict map
    endpoints: dict[tuple[str, str], str] = field(default_factory=dict)  # endpoint slots
    empty: set[str] = field(default_factory=set)  # no-endpoints set

    def add(self, service: ServiceRules) -> None:
        self.chains.update(service.chains())
        self.sets.update(service.sets())
        self.elements.update(service.map_elements())
        self.endpoints.update(service.endpoint_elements())
        self.empty |= service.no_endpoint_ports()


def partial_update(
    old: Mapping[str, ServiceRules], new: Mapping[str, ServiceRules], keys: Iterable[str]
) -> str:
    """One ``nft -f`` transaction moving the table from ``old`` to ``new`` for ``keys`` only.

    Order matters inside the transaction: create before use, and drop references (map elements,
    flushed rules) before deleting what they pointed at.
    """
    before, after = _TableContent(), _TableContent()
    for key in keys:
        if key in old:
            before.add(old[key])
        if key in new:
            after.add(new[key])
    out: list[str] = []
    # endpoint slots and the no-endpoints set are plain data: replaced in place, nothing refers
    # to one by name, and the kernel has no verdict to check again (a change of endpoints,
    # their number included, is only this at any number of Services)
    stale: dict[str, list[str]] = {}
    fresh: dict[str, list[str]] = {}
    for (name, k), v in before.endpoints.items():
        if after.endpoints.get((name, k)) != v:
            stale.setdefault(name, []).append(k)
    for (name, k), v in after.endpoints.items():
        if before.endpoints.get((name, k)) != v:
            fresh.setdefault(name, []).append(f"{k} : {v}")
    out += [
        f"delete element {TABLE} {name} {{ {', '.join(keys)} }}" for name, keys in stale.items()
    ]
    if refilled := ", ".join(sorted(before.empty - after.empty)):
        out.append(f"delete element {TABLE} {NO_ENDPOINTS_SET} {{ {refilled} }}")
    out += [f"add element {TABLE} {name} {{ {', '.join(items)} }}" for name, items in fresh.items()]
    if now_empty := ", ".join(sorted(after.empty - before.empty)):
        out.append(f"add element {TABLE} {NO_ENDPOINTS_SET} {{ {now_empty} }}")
    out += [
        f"add set {TABLE} {name} {{ {_set_declaration(t)} }}"
        for name, t in after.sets.items()
        if name not in before.sets
    ]
    out += [f"add chain {TABLE} {name}" for name in after.chains if name not in before.chains]
    out += [
        f"delete element {TABLE} {NODEPORT_MAP} {{ {proto} . {port} }}"
        for (proto, port), chain in before.elements.items()
        if after.elements.get((proto, port)) != chain
    ]
    for name, rules in after.chains.items():
        if before.chains.get(name) == rules:
            continue
        if name in before.chains:
            out.append(f"flush chain {TABLE} {name}")
        out += [f"add rule {TABLE} {name} {rule}" for rule in rules]
    out += [
        f"add element {TABLE} {NODEPORT_MAP} {{ {proto} . {port} : goto {chain} }}"
        for (proto, port), chain in after.elements.items()
        if before.elements.get((proto, port)) != chain
    ]
    gone = [name for name in before.chains if name not in after.chains]
    out += [f"flush chain {TABLE} {name}" for name in gone]
    out += [f"delete chain {TABLE} {name}" for name in gone]
    out += [f"delete set {TABLE} {name}" for name in before.sets if name not in after.sets]
    return "\n".join(out) + "\n" if out else ""
