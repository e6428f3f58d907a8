"""The node side of transparent mode: replies go back through the load balancer that opened
the connection.

In transparent mode HAProxy connects to ``nodeIP:nodePort`` from the *client's* address, so
the pod's reply is addressed to the client. Left to the main routing table it would go
straight to the client, which never opened that connection and drops it. For each load
balancer the agent is told about (``--load-balancer NAME,MAC,ADDRESS``) it keeps:

- in its own table ``inet nodeport-lb-return-path`` (never the NodePort table, so neither
  disturbs the other, and it works beside kube-proxy as well), replaced in one transaction:
  a new connection arriving from the load balancer's link-layer address gets that load
  balancer's bits in its conntrack mark; the replies of such a connection (forwarded from a
  pod in prerouting, or sent by this host in a ``type route`` output chain, which re-routes)
  get the same bits in their packet mark;
- a policy rule ``fwmark MARK/MASK lookup TABLE`` and, in that table, a default route via
  the load balancer: marked replies leave through it, where TPROXY hands them to HAProxy.

Each load balancer has its own mark and table, all of them in place ahead of time, so after a
VIP moves the new master's connections are routed back to it from the first packet. Only the
mark bits of ``MARK_MASK`` are touched (kube-proxy's 0x4000/0x8000 bits stay as they are).
Health checks come from the load balancer's own address: their replies take the same route,
to the same host.

Routes and rules are set with the ``ip`` command (iproute2, on every Debian host) rather than a
netlink library: a few changes per load balancer, re-checked every sync period.
"""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from nodeport_lb.agent.dataplane import RETURN_PATH, NftError, run_nft
from nodeport_lb.agent.metrics import AgentMetrics
from nodeport_lb.agent.peers import LoadBalancerPeer

log = logging.getLogger(__name__)

TABLE = "inet nodeport-lb-return-path"
MARK_SHIFT = 20
MARK_MASK = 0xF << MARK_SHIFT  # 0x00f00000: 15 load balancers, clear of kube-proxy's bits
MAX_LOAD_BALANCERS = 15
# Routing tables and rule priorities ROUTE_TABLE_BASE + 1 … + 15 (one per load balancer);
# rule priorities below the main table's 32766, so a marked reply never reaches it.
ROUTE_TABLE_BASE = 4200


@dataclass(frozen=True)
class PeerRoute:
    """What one load balancer gets on this node."""

    peer: LoadBalancerPeer
    mark: int
    route_table: int

    @property
    def rule_priority(self) -> int:
        return self.route_table


def plan_routes(peers: Sequence[LoadBalancerPeer]) -> list[PeerRoute]:
    if len(peers) > MAX_LOAD_BALANCERS:
        raise ValueError(f"at most {MAX_LOAD_BALANCERS} load balancers, got {len(peers)}")
    for index, peer in enumerate(peers):
        for other in peers[:index]:
            if peer.mac == other.mac or peer.address == other.address or peer.name == other.name:
                raise ValueError(f"load balancers {other.name} and {peer.name} clash")
    return [
        PeerRoute(peer, (index + 1) << MARK_SHIFT, ROUTE_TABLE_BASE + index + 1)
        for index, peer in enumerate(peers)
    ]


def _set_bits(what: str, mark: int) -> str:
    return f"{what} set {what} and {~MARK_MASK & 0xFFFFFFFF:#010x} or {mark:#010x}"


def _is_peer(mark: int) -> str:
    return f"ct mark and {MARK_MASK:#010x} == {mark:#010x}"


def ruleset(routes: Sequence[PeerRoute]) -> str:
    """The whole table, replaced atomically (create-if-missing, delete, define)."""
    remember = [
        f"        ct state new ether saddr {r.peer.mac} {_set_bits('ct mark', r.mark)} "
        f'comment "connections {r.peer.name} opens"'
        for r in routes
    ]
    route_back = [
        f"        ct direction reply {_is_peer(r.mark)} {_set_bits('meta mark', r.mark)} "
        f'comment "replies back through {r.peer.name}"'
        for r in routes
    ]
    lines = [
        f"table {TABLE}",
        f"delete table {TABLE}",
        f"table {TABLE} {{",
        "    chain prerouting {",
        "        type filter hook prerouting priority mangle; policy accept;",
        *remember,
        *route_back,
        "    }",
        "    chain output {",
        "        type route hook output priority mangle; policy accept;",
        *route_back,
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


class IpError(RuntimeError):
    pass


def _ip(*args: str, ip: str = "ip") -> str:
    proc = subprocess.run([ip, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise IpError(f"ip {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _ours(number: int) -> bool:
    return ROUTE_TABLE_BASE < number <= ROUTE_TABLE_BASE + MAX_LOAD_BALANCERS


class ReturnPath:
    """Keeps the table, the rules and the routes of every load balancer in place; a separate
    part of the agent, started in standalone and companion mode alike."""

    def __init__(
        self,
        peers: Sequence[LoadBalancerPeer],
        metrics: AgentMetrics,
        nft: str = "nft",
        ip: str = "ip",
        period: float = 30.0,
    ) -> None:
        self.routes = plan_routes(peers)
        self.metrics = metrics
        self.nft = nft
        self.ip = ip
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.healthy = False

    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._run, name="return-path", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # the rules stay: connections opened meanwhile keep their way back
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            # an error reconcile does not expect must not end the thread: the next period retries
            self.metrics.run_step(
                "return-path", self.reconcile, log, "return path: reconcile failed"
            )

    def reconcile(self) -> bool:
        """Bring table, rules and routes to the plan; False (logged) when something failed,
        which the next period retries."""
        ok = True
        try:
            run_nft(ruleset(self.routes), self.nft, context=RETURN_PATH)
        except NftError as exc:
            log.error("return path: nft transaction failed, previous rules kept: %s", exc)
            ok = False
        try:
            self._sync_rules_and_routes()
        except (IpError, OSError, ValueError) as exc:
            log.error("return path: routes not in place: %s", exc)
            ok = False
        if ok and not self.healthy:
            log.info(
                "return path in place for %s",
                ", ".join(
                    f"{r.peer.name} ({r.peer.mac}, mark {r.mark:#x}, table {r.route_table})"
                    for r in self.routes
                )
                or "no load balancer",
            )
        self.healthy = ok
        return ok

    def _sync_rules_and_routes(self) -> None:
        wanted = {r.route_table: r for r in self.routes}
        rules = json.loads(_ip("-j", "-4", "rule", "show", ip=self.ip) or "[]")
        present: set[int] = set()
        for rule in rules:
            table = rule.get("table")
            priority = int(rule.get("priority", -1))
            if not _ours(priority):
                continue
            route = wanted.get(priority)
            expected = (
                route is not None
                and str(table) == str(route.route_table)
                and rule.get("fwmark") == f"{route.mark:#x}"
                and rule.get("fwmask") == f"{MARK_MASK:#x}"
            )
            if expected:
                present.add(priority)
            else:  # a load balancer that left, or a rule someone changed
                _ip("-4", "rule", "del", "priority", str(priority), ip=self.ip)
        for route in self.routes:
            device = self._device_towards(route.peer.address)
            _ip(
                "-4",
                "route",
                "replace",
                "default",
                "via",
                route.peer.address,
                "dev",
                device,
                "onlink",
                "table",
                str(route.route_table),
                ip=self.ip,
            )
            if route.route_table not in present:
                _ip(
                    "-4",
                    "rule",
                    "add",
                    "fwmark",
                    f"{route.mark:#x}/{MARK_MASK:#x}",
                    "lookup",
                    str(route.route_table),
                    "priority",
                    str(route.rule_priority),
                    ip=self.ip,
                )
        for table in range(ROUTE_TABLE_BASE + 1, ROUTE_TABLE_BASE + MAX_LOAD_BALANCERS + 1):
            if table not in wanted:
                subprocess.run(
                    [self.ip, "-4", "route", "flush", "table", str(table)],
                    capture_output=True,
                    check=False,  # an empty table is not an error here
                )

    def _device_towards(self, address: str) -> str:
        """The interface the main table reaches the load balancer on (its link)."""
        (route,) = json.loads(_ip("-j", "-4", "route", "get", address, ip=self.ip))
        if route.get("gateway"):
            raise ValueError(
                f"{address} is reached through the router {route['gateway']}, not on a link "
                "of this node: the link-layer match needs the load balancer on the node's own "
                "network"
            )
        return str(route["dev"])
