"""The HAProxy plan: one frontend per Service port on its VIP, one backend per frontend listing
every node at nodeIP:nodePort, computed here so haproxy.cfg.j2 only prints it.

Health checks are those of ``nodeport_lb.health_check`` (as cloud controllers do: HTTP on the
healthCheckNodePort for externalTrafficPolicy Local, the node proxy's /healthz for Cluster).
They always go plainly: no PROXY header, from the load balancer's own address.

How the pods learn the client's address (``load_balancer.client_address``):

- ``transparent`` (default for eTP Local where every node runs the agent): HAProxy connects to
  the node *from the client's address* (``source 0.0.0.0 usesrc clientip``); the load
  balancers' TPROXY rules hand the replies back to HAProxy, and each node's agent routes the
  replies of a load balancer's connections back through that load balancer. Any application
  sees the client as its TCP peer.
- ``proxy-v2`` / ``proxy-v1``: a PROXY protocol header first on each connection (the
  application must parse it).
- ``forwardfor``: an ``X-Forwarded-For`` header (mode http only).
- ``none``: the pod sees the load balancer's address.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nodeport_lb.health_check import (
    HEALTHY_STATUS,
    HealthCheck,
    HealthCheckError,
    service_health_check,
)
from nodeport_lb.loadbalancer.settings import (
    HAProxySettings,
    Host,
    LoadBalancerOptions,
    PlanError,
    parse_hosts,
    validate_vips,
)
from nodeport_lb.model import Service, ServicePort
from nodeport_lb.services.applied import AppliedService
from nodeport_lb.services.base import InvalidService

# The HAProxy backend line that makes connections to the nodes leave from the client's address.
TRANSPARENT_SOURCE = "source 0.0.0.0 usesrc clientip"
# The load balancers' TPROXY return path: packets of HAProxy's transparent sockets get this
# mark, and the policy rule sends marked packets to a table that delivers them locally.
TPROXY = {
    "nft_table": "inet nodeport-lb-tproxy",
    "mark": "0x00010000",
    "route_table": 4200,
    "rule_priority": 4200,
}
# Hash-based algorithms are static in HAProxy unless hash-type is consistent: without it the
# agent-check weights would be ignored (and every node change would reshuffle all clients).
_HASHED = ("source",)


@dataclass(frozen=True)
class Server:
    """One ``server`` line of a backend as its fields; ``line`` writes it and ``parse`` reads
    one back (from a load balancer's haproxy.cfg), so nothing else splits option strings."""

    name: str
    address: str
    port: int
    check: bool = True
    check_port: int | None = None  # None: checks go to the traffic port
    send_proxy: str = ""  # "v1" | "v2": a PROXY header before each connection's data
    weight: int | None = None
    agent_check: bool = False
    agent_port: int | None = None
    agent_inter: str = ""
    agent_send: str = ""  # the agent-check's request line (sent with a newline)
    other: tuple[str, ...] = ()  # words of a parsed line that none of the fields holds

    @property
    def health_port(self) -> int:
        """The port the checks go to."""
        return self.check_port or self.port

    @property
    def options(self) -> str:
        """Everything after ``server NAME ADDR:PORT``."""
        words = ["check"] if self.check else []
        if self.check_port is not None:
            words += ["port", str(self.check_port)]
        if self.send_proxy:
            words.append({"v1": "send-proxy", "v2": "send-proxy-v2"}[self.send_proxy])
        if self.weight is not None:
            words += ["weight", str(self.weight)]
        if self.agent_check:
            words.append("agent-check")
        if self.agent_port is not None:
            words += ["agent-port", str(self.agent_port)]
        if self.agent_inter:
            words += ["agent-inter", self.agent_inter]
        if self.agent_send:
            words += ["agent-send", f'"{self.agent_send}\\n"']
        return " ".join([*words, *self.other])

    @property
    def line(self) -> str:
        return f"server {self.name} {self.address}:{self.port} {self.options}".rstrip()

    @classmethod
    def parse(cls, line: str) -> Server:
        """A ``server NAME ADDR:PORT OPTIONS...`` line (without comments)."""
        words = line.split()
        if len(words) < 3 or words[0] != "server":
            raise ValueError(f"not a server line: {line!r}")
        address, _, port = words[2].rpartition(":")
        fields: dict[str, Any] = {"check": False}
        other: list[str] = []
        rest = iter(words[3:])
        numbers = {"port": "check_port", "weight": "weight", "agent-port": "agent_port"}
        for word in rest:
            if word == "check":
                fields["check"] = True
            elif word in ("send-proxy", "send-proxy-v2"):
                fields["send_proxy"] = "v2" if word.endswith("v2") else "v1"
            elif word == "agent-check":
                fields["agent_check"] = True
            elif word in numbers or word in ("agent-inter", "agent-send"):
                value = next(rest, "")
                if word in numbers:
                    if not value.isdigit():
                        other += [word, value]
                        continue
                    fields[numbers[word]] = int(value)
                elif word == "agent-inter":
                    fields["agent_inter"] = value
                else:
                    fields["agent_send"] = value.strip('"').removesuffix("\\n")
            else:
                other.append(word)
        return cls(
            words[1], address, int(port) if port.isdigit() else 0, **fields, other=tuple(other)
        )


@dataclass(frozen=True)
class Listener:
    """One Service port on one VIP: an HAProxy frontend and its backend."""

    name: str
    service: str  # namespace/name
    port_name: str
    vip: str
    port: int
    mode: str
    balance: str
    frontend_options: tuple[str, ...]
    backend_options: tuple[str, ...]  # option/http-check/hash-type lines, in order
    default_server: str
    servers: tuple[Server, ...]
    check: str  # human summary, e.g. "http GET / on hcnp 31897 expect 200"
    client_address: str = "none"  # how the pods learn the client's address

    @property
    def bind(self) -> str:
        return f"{self.vip}:{self.port}"


@dataclass(frozen=True)
class HAProxyPlan:
    settings: HAProxySettings
    vips: tuple[str, ...]
    listeners: tuple[Listener, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def transparent(self) -> bool:
        """Some backend connects from the clients' addresses (TPROXY needed on the LBs)."""
        return any(listener.client_address == "transparent" for listener in self.listeners)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for Jinja and Ansible facts (properties included)."""
        listeners = []
        for listener in self.listeners:
            item = asdict(listener)
            item["bind"] = listener.bind
            item["servers"] = [
                {**asdict(s), "options": s.options, "line": s.line} for s in listener.servers
            ]
            listeners.append(item)
        return {
            "settings": asdict(self.settings),
            "vips": list(self.vips),
            "listeners": listeners,
            "warnings": list(self.warnings),
            "transparent": self.transparent,
            "tproxy": dict(TPROXY),
        }


def _read(entry: Any, index: int) -> AppliedService:
    """An entry of the Services role's fact, or one already read: every value of it passed
    the Service's own validation, so names, ports and protocols are what the API allows and
    nothing can add a line or a section to haproxy.cfg."""
    if isinstance(entry, AppliedService):
        return entry
    try:
        return AppliedService.from_fact(entry)
    except InvalidService as exc:
        raise PlanError(f"nodeport_lb_applied_services[{index}]: {exc}") from None


def _balanced_ports(service: Service, where: str, warnings: list[str]) -> list[ServicePort]:
    """The ports HAProxy balances (TCP); every port needs its nodePort."""
    if not service.ports:
        raise PlanError(f"{where}.ports: the Service has no ports")
    for index, port in enumerate(service.ports):
        if not port.node_port:
            raise PlanError(
                f"{where}.ports[{index}] ({port.key}): no nodePort allocated (allocateLoad"
                "BalancerNodePorts: false?); the load balancers reach pods through nodePorts"
            )
    tcp = []
    for port in service.ports:
        if port.protocol == "TCP":
            tcp.append(port)
        else:
            warnings.append(f"{where} port {port.key}: {port.protocol} is not balanced (TCP only)")
    return tcp


def _check_lines(health_check: HealthCheck) -> tuple[list[str], str]:
    """The backend's check lines and a summary for people."""
    if not health_check.is_http:
        return [], "tcp connect to the nodePort"
    path, port = health_check.path, health_check.port
    summary = (
        f"http GET {path} on hcnp {port}, 200 = node has a ready local pod"
        if health_check.on_hcnp
        else f"http GET {path} on {port} (node proxy healthy)"
    )
    return [f"option httpchk GET {path}", f"http-check expect status {HEALTHY_STATUS}"], summary


def _backend_options(
    balance: str, check_lines: list[str], options: LoadBalancerOptions, config: HAProxySettings
) -> tuple[str, ...]:
    lines: list[str] = []
    if balance in _HASHED:
        lines.append("hash-type consistent")
    lines += check_lines
    if options.client_address == "forwardfor":
        lines.append("option forwardfor")
    if options.transparent:
        # checks carry no client: HAProxy sends them from this host's own address
        lines.append(TRANSPARENT_SOURCE)
    if config.redispatch:
        lines.append("option redispatch")
    lines.append(f"retries {config.retries}")
    return tuple(lines)


def _servers(
    nodes: list[Host],
    node_port: int,
    health_check: HealthCheck,
    options: LoadBalancerOptions,
    config: HAProxySettings,
    key: str,
) -> tuple[Server, ...]:
    # The check goes to another port ("port"), so HAProxy sends it without the PROXY header;
    # check-send-proxy is never used (hcnp/healthz servers do not speak it).
    check_port = health_check.port if health_check.is_http else None
    proxy = "" if options.proxy_protocol == "none" else options.proxy_protocol
    # The agent answers "up N00%" for N local ready pods: weight 1 makes it N.
    agent: dict[str, Any] = (
        {
            "weight": 1,
            "agent_check": True,
            "agent_port": config.agent_check_port,
            "agent_inter": config.agent_inter,
            "agent_send": key,
        }
        if options.agent_check
        else {}
    )
    return tuple(
        Server(node.name, node.address, node_port, True, check_port, proxy, **agent)
        for node in nodes
    )


def plan_haproxy(
    services: Iterable[AppliedService | Mapping[str, Any]],
    nodes: Any,
    vips: Any,
    settings: Mapping[str, Any] | None = None,
) -> HAProxyPlan:
    """Frontends on the VIPs, one per Service port; backends listing every node.

    ``services``: the applied Services, or the Services role's fact of them
    (``nodeport_lb_applied_services``), each read with ``AppliedService.from_fact``."""
    config = HAProxySettings.parse(settings)
    vip_list = validate_vips(vips)
    node_list = parse_hosts(nodes, "nodes")
    if not node_list:
        raise PlanError("nodes: the inventory group 'nodes' is empty: nothing to send traffic to")
    if not isinstance(services, list | tuple):
        raise PlanError(f"nodeport_lb_applied_services: expected a list, got {services!r}")

    listeners: list[Listener] = []
    warnings: list[str] = []
    bound: dict[tuple[str, int], str] = {}
    for index, entry in enumerate(services):
        applied = _read(entry, index)
        service, key = applied.service, applied.service.key
        where = f"Service {key}"
        if applied.to_be_allocated:
            # check mode on a cluster: the API server picks these ports only when it creates
            # the Service, so there is nothing true to put in a config yet
            warnings.append(
                f"{where}: left out of this plan: the API server allocates "
                f"{', '.join(applied.to_be_allocated)} when the Service is created"
            )
            continue
        options = LoadBalancerOptions.parse(
            applied.load_balancer,
            service_type=service.type,
            local=service.is_local,
            where=f"{where}: load_balancer",
            nodes_without_agent=tuple(node.name for node in node_list if not node.agent),
        )
        if not options.enabled:
            continue
        warnings += options.warnings
        if service.type not in ("LoadBalancer", "NodePort"):
            raise PlanError(f"{where}: type {service.type} has no nodePorts to balance")
        try:
            health_check = service_health_check(
                service,
                protocol=options.healthcheck,
                fix="load_balancer.healthcheck: http (the default)",
                healthz_port=config.healthz_port,
            )
        except HealthCheckError as exc:
            raise PlanError(str(exc)) from None
        vip = options.vip or vip_list[0]
        if vip not in vip_list:
            raise PlanError(
                f"{where}: load_balancer.vip {vip!r} is not one of nodeport_lb_vips ({vip_list})"
            )
        balance = options.balance or config.balance
        check_lines, check = _check_lines(health_check)
        backend_options = _backend_options(balance, check_lines, options, config)

        for port in _balanced_ports(service, where, warnings):
            other = bound.get((vip, port.port))
            if other:
                raise PlanError(
                    f"{where} port {port.key}: {vip}:{port.port} is already used by {other}; "
                    "give one of them another load_balancer.vip"
                )
            bound[(vip, port.port)] = f"{key} port {port.key}"
            listeners.append(
                Listener(
                    name=f"{service.namespace}_{service.name}_{port.key}",  # all validated
                    service=key,
                    port_name=port.key,
                    vip=vip,
                    port=port.port,
                    mode=options.mode,
                    balance=balance,
                    frontend_options=(
                        ("option httplog",) if options.mode == "http" else ("option tcplog",)
                    ),
                    backend_options=backend_options,
                    default_server=(
                        f"default-server inter {config.inter} fall {config.fall} rise {config.rise}"
                    ),
                    servers=_servers(node_list, port.node_port, health_check, options, config, key),
                    check=check,
                    client_address=options.client_address,
                )
            )
    return HAProxyPlan(config, tuple(vip_list), tuple(listeners), tuple(warnings))
