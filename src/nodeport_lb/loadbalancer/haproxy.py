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

from collections.abc import Mapping
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
    integer,
    one_of,
    parse_hosts,
    validate_vips,
)
from nodeport_lb.validation.names import is_dns1035_label, is_dns1123_label

_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
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


def _service_identity(service: Mapping[str, Any], index: int) -> tuple[str, str]:
    """Namespace and name as the API server allows them: they become haproxy.cfg section
    names, comments and the agent-check request, so nothing else may pass (a newline in a
    name would start a section of its own)."""
    where = f"nodeport_lb_services[{index}]"
    name, namespace = service.get("name"), service.get("namespace") or "default"
    if not isinstance(name, str) or is_dns1035_label(name):
        problems = is_dns1035_label(name) if isinstance(name, str) else ["must be a string"]
        raise PlanError(f"{where}.name: {name!r}: {problems[0]}")
    if not isinstance(namespace, str) or is_dns1123_label(namespace):
        problems = is_dns1123_label(namespace) if isinstance(namespace, str) else ["a string"]
        raise PlanError(f"{where}.namespace: {namespace!r}: {problems[0]}")
    return namespace, name


def _service_ports(service: Mapping[str, Any], where: str) -> list[tuple[str, int, int, str]]:
    """(key, port, nodePort, protocol) from the manifest-form ports the Services role returns."""
    ports = service.get("ports")
    if not isinstance(ports, list) or not ports:
        raise PlanError(f"{where}.ports: the Service has no ports")
    result = []
    for index, port in enumerate(ports):
        if not isinstance(port, Mapping):
            raise PlanError(f"{where}.ports[{index}]: expected a dict, got {port!r}")
        number = integer(1, 65535)(port.get("port"), f"{where}.ports[{index}].port")
        node_port = port.get("nodePort", port.get("node_port"))
        key = str(port.get("name") or number)
        if not node_port:
            raise PlanError(
                f"{where}.ports[{index}] ({key}): no nodePort allocated (allocateLoadBalancer"
                "NodePorts: false?); the load balancers reach pods through nodePorts"
            )
        node_port = integer(1, 65535)(node_port, f"{where}.ports[{index}].nodePort")
        if port.get("name") and is_dns1123_label(key):
            raise PlanError(f"{where}.ports[{index}].name: {key!r}: " + is_dns1123_label(key)[0])
        protocol = one_of(*_PROTOCOLS)(
            port.get("protocol") or "TCP", f"{where}.ports[{index}].protocol"
        )
        result.append((key, number, node_port, protocol))
    return result


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
    services: Any,
    nodes: Any,
    vips: Any,
    settings: Mapping[str, Any] | None = None,
) -> HAProxyPlan:
    """Frontends on the VIPs, one per Service port; backends listing every node."""
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
    for index, service in enumerate(services):
        if not isinstance(service, Mapping) or not service.get("name"):
            raise PlanError(f"nodeport_lb_services[{index}]: expected a Service dict")
        namespace, name = _service_identity(service, index)
        key = f"{namespace}/{name}"
        where = f"Service {key}"
        pending = service.get("to_be_allocated")
        if pending and isinstance(pending, list | tuple):
            # check mode on a cluster: the API server picks these ports only when it creates
            # the Service, so there is nothing true to put in a config yet
            warnings.append(
                f"{where}: left out of this plan: the API server allocates "
                f"{', '.join(map(str, pending))} when the Service is created"
            )
            continue
        svc_type = one_of(*_SERVICE_TYPES)(service.get("type") or "ClusterIP", f"{where}: type")
        local = service.get("external_traffic_policy") == "Local"
        options = LoadBalancerOptions.parse(
            service.get("load_balancer"),
            service_type=svc_type,
            local=local,
            where=f"{where}: load_balancer",
            nodes_without_agent=tuple(node.name for node in node_list if not node.agent),
        )
        if not options.enabled:
            continue
        warnings += options.warnings
        if svc_type not in ("LoadBalancer", "NodePort"):
            raise PlanError(f"{where}: type {svc_type} has no nodePorts to balance")
        hcnp = service.get("health_check_node_port") or 0
        hcnp = integer(1, 65535)(hcnp, f"{where}: health_check_node_port") if hcnp else 0
        try:
            health_check = service_health_check(
                where,
                local=local,
                health_check_node_port=hcnp,
                protocol=options.healthcheck,
                fix="load_balancer.healthcheck: http (the default)",
                service_type=svc_type,
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

        for port_key, port, node_port, protocol in _service_ports(service, where):
            if protocol != "TCP":
                warnings.append(f"{where} port {port_key}: {protocol} is not balanced (TCP only)")
                continue
            other = bound.get((vip, port))
            if other:
                raise PlanError(
                    f"{where} port {port_key}: {vip}:{port} is already used by {other}; give "
                    "one of them another load_balancer.vip"
                )
            bound[(vip, port)] = f"{key} port {port_key}"
            listeners.append(
                Listener(
                    name=f"{namespace}_{name}_{port_key}",  # every part validated
                    service=key,
                    port_name=port_key,
                    vip=vip,
                    port=port,
                    mode=options.mode,
                    balance=balance,
                    frontend_options=(
                        ("option httplog",) if options.mode == "http" else ("option tcplog",)
                    ),
                    backend_options=backend_options,
                    default_server=(
                        f"default-server inter {config.inter} fall {config.fall} rise {config.rise}"
                    ),
                    servers=_servers(node_list, node_port, health_check, options, config, key),
                    check=check,
                    client_address=options.client_address,
                )
            )
    return HAProxyPlan(config, tuple(vip_list), tuple(listeners), tuple(warnings))
