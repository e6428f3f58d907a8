"""Plan the load balancers in front of the Services: HAProxy frontends/backends and keepalived
VRRP instances, computed here (and tested directly) so the templates only print the result.

Inputs are what the playbook has: the applied Services (``nodeport_lb_applied_services``: the
user's service items combined with the allocated ``ports``/``node_ports`` and
``health_check_node_port``), the nodes and load balancers of the inventory, the VIPs and the
tunables. Every user-given value is validated; a bad one raises ``PlanError`` whose message
says which variable is wrong and why, before any file is rendered.

Health checks are those of ``nodeport_lb.health_check`` (as cloud controllers do: HTTP on the
healthCheckNodePort for externalTrafficPolicy Local, the node proxy's /healthz for Cluster).

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

Health checks always go plainly (no PROXY header, from the load balancer's own address).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from nodeport_lb.defaults import AGENT_CHECK_PORT, PROXY_HEALTHZ_PORT
from nodeport_lb.health_check import (
    HEALTHY_STATUS,
    HealthCheck,
    HealthCheckError,
    service_health_check,
)
from nodeport_lb.validation.names import is_dns1035_label, is_dns1123_label


class PlanError(ValueError):
    """A user-given value the load balancers cannot be built from (message says why)."""


_TIME = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")
_ABSOLUTE_PATH = re.compile(r"/[A-Za-z0-9._/@+-]*")
_UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_LOG_TARGET = re.compile(r"[A-Za-z0-9._/@:\[\]-]+( [a-z0-9]+){0,3}")
_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
_PROTOCOLS = ("TCP", "UDP", "SCTP")
_HAPROXY_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
CLIENT_ADDRESS_MODES = ("transparent", "proxy-v2", "proxy-v1", "forwardfor", "none")
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
BALANCE_ALGORITHMS = ("source", "roundrobin", "leastconn", "static-rr", "first", "random")
# Hash-based algorithms are static in HAProxy unless hash-type is consistent: without it the
# agent-check weights would be ignored (and every node change would reshuffle all clients).
_HASHED = ("source",)


# --------------------------------------------------------------------------------------------
# small validators


def _time(value: Any, where: str) -> str:
    text = str(value)
    if isinstance(value, bool) or not _TIME.fullmatch(text):
        raise PlanError(f"{where}: {value!r} is not an HAProxy time (e.g. 500ms, 1s, 2m)")
    return text


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or (not isinstance(value, int) and not str(value).isdigit()):
        raise PlanError(f"{where}: {value!r} is not an integer")
    number = int(value)
    if not low <= number <= high:
        raise PlanError(f"{where}: {number} is out of range ({low}-{high})")
    return number


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PlanError(f"{where}: {value!r} is not a boolean (true/false)")
    return value


def _choice(value: Any, where: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise PlanError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def validate_vips(vips: Any, where: str = "nodeport_lb_vips") -> list[str]:
    """VIPs as IPv4 addresses (no prefix), at least one, no duplicates."""
    if isinstance(vips, str) or not isinstance(vips, list | tuple) or not vips:
        raise PlanError(f"{where}: expected a non-empty list of IPv4 addresses, got {vips!r}")
    result: list[str] = []
    for index, vip in enumerate(vips):
        try:
            address = ipaddress.ip_address(str(vip).strip())
        except ValueError:
            raise PlanError(f"{where}[{index}]: {vip!r} is not an IP address") from None
        if address.version != 4:
            raise PlanError(f"{where}[{index}]: {vip}: only IPv4 VIPs are supported")
        if address.is_loopback or address.is_multicast or address.is_unspecified:
            raise PlanError(f"{where}[{index}]: {vip} cannot be a VIP (loopback/multicast/any)")
        if str(address) in result:
            raise PlanError(f"{where}[{index}]: {vip} is listed twice")
        result.append(str(address))
    return result


def _address(value: Any, where: str) -> str:
    text = str(value or "").strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        if _HOSTNAME.fullmatch(text) and not text.replace(".", "").isdigit():
            return text
    raise PlanError(f"{where}: {value!r} is neither an IP address nor a host name")


def _known_keys(given: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise PlanError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


# --------------------------------------------------------------------------------------------
# inventory hosts


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    priority: int | None = None  # keepalived priority (load balancers only)
    # nodes only: the nodeport-lb agent runs there (standalone or beside kube-proxy), so it
    # can route replies back through the load balancer that opened the connection
    agent: bool = True


def hosts_from_inventory(
    hostvars: Iterable[Mapping[str, Any]], address_var: str = "nodeport_lb_node_address"
) -> list[dict[str, Any]]:
    """[{name, address, priority, agent}] from inventory hostvars: ``address_var`` when set
    (an address on the load balancers' network), else ``ansible_host``, else the host's name;
    ``agent`` is ``nodeport_lb_node_agent`` (default true: site.yml installs it on every node)."""
    hosts = []
    for host_vars in hostvars:
        name = str(host_vars.get("inventory_hostname"))
        address = host_vars.get(address_var) or host_vars.get("ansible_host") or name
        hosts.append(
            {
                "name": name,
                "address": str(address),
                "priority": host_vars.get("nodeport_lb_keepalived_priority"),
                "agent": host_vars.get("nodeport_lb_node_agent", True),
            }
        )
    return hosts


def _hosts(items: Any, where: str) -> list[Host]:
    if not isinstance(items, list | tuple):
        raise PlanError(f"{where}: expected a list of {{name, address}}, got {items!r}")
    hosts: list[Host] = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not item.get("name"):
            raise PlanError(f"{where}[{index}]: expected {{name, address}}, got {item!r}")
        name = str(item["name"])
        if not _HAPROXY_NAME.fullmatch(name):
            raise PlanError(f"{where}[{index}]: {name!r}: use letters, digits, - _ . : only")
        address = _address(item.get("address"), f"{where}[{index}] ({name}).address")
        priority = item.get("priority")
        if priority is not None:
            priority = _int(priority, f"{name}: nodeport_lb_keepalived_priority", 1, 254)
        if any(h.name == name for h in hosts):
            raise PlanError(f"{where}[{index}]: host {name} is listed twice")
        agent = _bool(item.get("agent", True), f"{name}: nodeport_lb_node_agent")
        hosts.append(Host(name, address, priority, agent))
    return hosts


# --------------------------------------------------------------------------------------------
# HAProxy


@dataclass(frozen=True)
class HAProxySettings:
    """The role's tunables (``nodeport_lb_haproxy_<name>``)."""

    inter: str = "1s"
    fall: int = 2
    rise: int = 2
    balance: str = "source"
    retries: int = 3
    redispatch: bool = True
    timeout_connect: str = "5s"
    timeout_client: str = "1m"
    timeout_server: str = "1m"
    timeout_check: str = "1s"
    # None: HAProxy sizes maxconn to the file-descriptor limit it gets (a fixed value above
    # what the host's hard limit allows makes HAProxy refuse to start)
    maxconn: int | None = None
    healthz_port: int = PROXY_HEALTHZ_PORT
    agent_check_port: int = AGENT_CHECK_PORT
    agent_inter: str = "2s"
    stats_socket: str = "/run/haproxy/admin.sock"
    log: str = "/dev/log local0"
    chroot: str = "/var/lib/haproxy"
    # Who HAProxy runs as: set by the systemd unit (User=/Group= with the capabilities it
    # needs), never by a `user` line, which HAProxy refuses together with usesrc clientip.
    user: str = "haproxy"
    group: str = "haproxy"

    @classmethod
    def parse(cls, given: Mapping[str, Any] | None) -> HAProxySettings:
        given = dict(given or {})
        names = {f.name for f in fields(cls)}
        _known_keys(given, names, "haproxy settings")
        values = {k: v for k, v in given.items() if v is not None}
        settings = cls(**values)
        w = "nodeport_lb_haproxy_"
        for name in ("inter", "timeout_connect", "timeout_client", "timeout_server"):
            _time(getattr(settings, name), w + name)
        _time(settings.timeout_check, w + "timeout_check")
        _time(settings.agent_inter, w + "agent_inter")
        _int(settings.fall, w + "fall", 1, 100)
        _int(settings.rise, w + "rise", 1, 100)
        _int(settings.retries, w + "retries", 0, 100)
        if settings.maxconn is not None:
            _int(settings.maxconn, w + "maxconn", 1, 10_000_000)
        _int(settings.healthz_port, "nodeport_lb_healthz_port", 1, 65535)
        _int(settings.agent_check_port, "nodeport_lb_agent_check_port", 1, 65535)
        _choice(settings.balance, w + "balance", BALANCE_ALGORITHMS)
        _bool(settings.redispatch, w + "redispatch")
        for name, pattern, form in (
            ("stats_socket", _ABSOLUTE_PATH, "an absolute path"),
            ("chroot", _ABSOLUTE_PATH, "an absolute path"),
            ("log", _LOG_TARGET, "a log target and facility, e.g. /dev/log local0"),
            ("user", _UNIX_NAME, "a user name"),
            ("group", _UNIX_NAME, "a group name"),
        ):
            value = getattr(settings, name)
            # each is printed into haproxy.cfg: one word (or the log's few) and nothing more
            if not isinstance(value, str) or not pattern.fullmatch(value):
                raise PlanError(f"{w}{name}: {value!r} is not {form}")
        return cls(
            **{
                **asdict(settings),
                **{n: int(getattr(settings, n)) for n in ("fall", "rise", "retries")},
                "maxconn": None if settings.maxconn is None else int(settings.maxconn),
            }
        )


DEPRECATED_CLIENT_ADDRESS_KEYS = (
    "{where}.{key}: deprecated, use client_address: {mode} (the one setting for how the "
    "pods learn the client's address)"
)
LOCAL_WITHOUT_CLIENT_ADDRESS = (
    "{where}: externalTrafficPolicy is Local, which is chosen to keep the client's address, "
    "but with client_address: none the pods see the load balancer's address ({reason}); use "
    "client_address: transparent (every node runs the nodeport-lb agent), proxy-v2 (the "
    "application parses PROXY headers) or forwardfor (mode http)"
)


@dataclass(frozen=True)
class LoadBalancerOptions:
    """A Service's own ``load_balancer:`` settings."""

    enabled: bool
    mode: str = "tcp"  # tcp | http
    client_address: str = "none"  # one of CLIENT_ADDRESS_MODES
    healthcheck: str = "http"  # http | tcp
    agent_check: bool = False
    vip: str = ""
    balance: str = ""
    warnings: tuple[str, ...] = ()

    KEYS = (
        "enabled",
        "mode",
        "client_address",
        "proxy_protocol",  # deprecated: client_address proxy-v1 / proxy-v2
        "forwardfor",  # deprecated: client_address forwardfor
        "healthcheck",
        "agent_check",
        "vip",
        "balance",
    )

    @property
    def proxy_protocol(self) -> str:
        """none | v1 | v2: the PROXY header HAProxy puts before each connection's data."""
        return {"proxy-v2": "v2", "proxy-v1": "v1"}.get(self.client_address, "none")

    @property
    def transparent(self) -> bool:
        return self.client_address == "transparent"

    @classmethod
    def parse(
        cls,
        given: Any,
        *,
        service_type: str,
        local: bool,
        where: str,
        nodes_without_agent: tuple[str, ...] = (),
    ) -> LoadBalancerOptions:
        if given is None:
            given = {}
        if not isinstance(given, Mapping):
            raise PlanError(f"{where}: expected a dict, got {given!r}")
        _known_keys(given, cls.KEYS, where)
        # Only LoadBalancer Services get a VIP by default; others on request.
        enabled = _bool(given.get("enabled", service_type == "LoadBalancer"), f"{where}.enabled")
        mode = _choice(given.get("mode", "tcp"), f"{where}.mode", ("tcp", "http"))
        warnings: list[str] = []
        legacy = _legacy_client_address(given, where, warnings)
        if "client_address" in given:
            client_address = _choice(
                given["client_address"], f"{where}.client_address", CLIENT_ADDRESS_MODES
            )
            if legacy is not None and legacy != client_address:
                raise PlanError(
                    f"{where}: client_address: {client_address} contradicts the deprecated "
                    f"proxy_protocol/forwardfor (= {legacy}); keep client_address only"
                )
        elif legacy is not None:
            client_address = legacy
        elif local and not nodes_without_agent:
            client_address = "transparent"
        elif mode == "http":
            client_address = "forwardfor"
        else:
            client_address = "none"
        if client_address == "forwardfor" and mode != "http":
            raise PlanError(
                f"{where}.client_address: forwardfor (X-Forwarded-For) needs mode: http (in tcp "
                "mode HAProxy does not parse HTTP); use proxy-v2 or transparent"
            )
        if client_address == "transparent":
            if not local:
                raise PlanError(
                    f"{where}.client_address: transparent is for externalTrafficPolicy: Local; "
                    "with Cluster the node masquerades, so the pod sees the node's address "
                    "whatever the load balancer does"
                )
            if nodes_without_agent:
                raise PlanError(
                    f"{where}.client_address: transparent needs the nodeport-lb agent on every "
                    "node (it routes the replies back through the load balancer that opened "
                    f"the connection); {', '.join(nodes_without_agent)} do(es) not run it "
                    "(nodeport_lb_node_agent: false): their replies would go straight to the "
                    "client, which drops them. Use proxy-v2 or run the agent there."
                )
        if local and client_address == "none" and enabled:
            reason = (
                f"{', '.join(nodes_without_agent)} do(es) not run the nodeport-lb agent, so "
                "transparent mode is off"
                if nodes_without_agent and "client_address" not in given
                else "nothing hands it on"
            )
            warnings.append(LOCAL_WITHOUT_CLIENT_ADDRESS.format(where=where, reason=reason))
        healthcheck = _choice(
            given.get("healthcheck", "http"), f"{where}.healthcheck", ("http", "tcp")
        )
        agent_check = _bool(given.get("agent_check", local), f"{where}.agent_check")
        if agent_check and not local:
            raise PlanError(
                f"{where}.agent_check: the node agent weighs a node by its local pods, which "
                "only means something for externalTrafficPolicy: Local (with Cluster every "
                "node forwards to every pod)"
            )
        vip = str(given.get("vip") or "")
        balance = str(given.get("balance") or "")
        if balance:
            _choice(balance, f"{where}.balance", BALANCE_ALGORITHMS)
        return cls(
            enabled,
            mode,
            client_address,
            healthcheck,
            agent_check,
            vip,
            balance,
            tuple(warnings),
        )


def _legacy_client_address(given: Mapping[str, Any], where: str, warnings: list[str]) -> str | None:
    """The client_address the deprecated proxy_protocol / forwardfor keys mean (None: unset)."""
    meant: list[str] = []
    if "proxy_protocol" in given:
        proxy = given["proxy_protocol"]
        if proxy in (False, None):
            proxy = "none"
        proxy = _choice(proxy, f"{where}.proxy_protocol", ("none", "v1", "v2"))
        mode = {"v1": "proxy-v1", "v2": "proxy-v2"}.get(proxy, "none")
        warnings.append(
            DEPRECATED_CLIENT_ADDRESS_KEYS.format(where=where, key="proxy_protocol", mode=mode)
        )
        if mode != "none":
            meant.append(mode)
    if "forwardfor" in given:
        forwardfor = _bool(given["forwardfor"], f"{where}.forwardfor")
        warnings.append(
            DEPRECATED_CLIENT_ADDRESS_KEYS.format(
                where=where, key="forwardfor", mode="forwardfor" if forwardfor else "none"
            )
        )
        if forwardfor:
            meant.append("forwardfor")
    if len(meant) > 1:
        raise PlanError(
            f"{where}: proxy_protocol and forwardfor both set; choose one client_address"
        )
    if meant:
        return meant[0]
    return "none" if ("proxy_protocol" in given or "forwardfor" in given) else None


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    port: int
    options: str  # everything after "server NAME ADDR:PORT"

    @property
    def line(self) -> str:
        return f"server {self.name} {self.address}:{self.port} {self.options}".rstrip()


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
            item["servers"] = [{**asdict(s), "line": s.line} for s in listener.servers]
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
        number = _int(port.get("port"), f"{where}.ports[{index}].port", 1, 65535)
        node_port = port.get("nodePort", port.get("node_port"))
        key = str(port.get("name") or number)
        if not node_port:
            raise PlanError(
                f"{where}.ports[{index}] ({key}): no nodePort allocated (allocateLoadBalancer"
                "NodePorts: false?); the load balancers reach pods through nodePorts"
            )
        node_port = _int(node_port, f"{where}.ports[{index}].nodePort", 1, 65535)
        if port.get("name") and is_dns1123_label(key):
            raise PlanError(f"{where}.ports[{index}].name: {key!r}: " + is_dns1123_label(key)[0])
        protocol = _choice(
            port.get("protocol") or "TCP", f"{where}.ports[{index}].protocol", _PROTOCOLS
        )
        result.append((key, number, node_port, protocol))
    return result


def _haproxy_check(health_check: HealthCheck) -> tuple[list[str], str, str]:
    """The backend's check lines, a summary for people, and the servers' check option."""
    if not health_check.is_http:
        return [], "tcp connect to the nodePort", "check"
    path, port = health_check.path, health_check.port
    summary = (
        f"http GET {path} on hcnp {port}, 200 = node has a ready local pod"
        if health_check.on_hcnp
        else f"http GET {path} on {port} (node proxy healthy)"
    )
    lines = [f"option httpchk GET {path}", f"http-check expect status {HEALTHY_STATUS}"]
    return lines, summary, f"check port {port}"


def plan_haproxy(
    services: Any,
    nodes: Any,
    vips: Any,
    settings: Mapping[str, Any] | None = None,
) -> HAProxyPlan:
    """Frontends on the VIPs, one per Service port; backends listing every node."""
    config = HAProxySettings.parse(settings)
    vip_list = validate_vips(vips)
    node_list = _hosts(nodes, "nodes")
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
        svc_type = _choice(service.get("type") or "ClusterIP", f"{where}: type", _SERVICE_TYPES)
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
        hcnp = _int(hcnp, f"{where}: health_check_node_port", 1, 65535) if hcnp else 0
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

        backend_options: list[str] = []
        if balance in _HASHED:
            backend_options.append("hash-type consistent")
        check_lines, check, check_options = _haproxy_check(health_check)
        backend_options += check_lines
        if options.client_address == "forwardfor":
            backend_options.append("option forwardfor")
        if options.transparent:
            # checks carry no client: HAProxy sends them from this host's own address
            backend_options.append(TRANSPARENT_SOURCE)
        if config.redispatch:
            backend_options.append("option redispatch")
        backend_options.append(f"retries {config.retries}")

        server_options = [check_options]
        # The check goes to another port ("port"), so HAProxy sends it without the PROXY
        # header; check-send-proxy is never used (hcnp/healthz servers do not speak it).
        if options.proxy_protocol == "v2":
            server_options.append("send-proxy-v2")
        elif options.proxy_protocol == "v1":
            server_options.append("send-proxy")
        if options.agent_check:
            # The agent answers "up N00%" for N local ready pods: weight 1 makes it N.
            server_options += [
                "weight 1",
                "agent-check",
                f"agent-port {config.agent_check_port}",
                f"agent-inter {config.agent_inter}",
                f'agent-send "{key}\\n"',
            ]

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
            name = f"{namespace}_{service['name']}_{port_key}"  # every part validated
            listeners.append(
                Listener(
                    name=name,
                    service=key,
                    port_name=port_key,
                    vip=vip,
                    port=port,
                    mode=options.mode,
                    balance=balance,
                    frontend_options=(
                        ("option httplog",) if options.mode == "http" else ("option tcplog",)
                    ),
                    backend_options=tuple(backend_options),
                    default_server=(
                        f"default-server inter {config.inter} fall {config.fall} rise {config.rise}"
                    ),
                    servers=tuple(
                        Server(node.name, node.address, node_port, " ".join(server_options))
                        for node in node_list
                    ),
                    check=check,
                    client_address=options.client_address,
                )
            )
    return HAProxyPlan(config, tuple(vip_list), tuple(listeners), tuple(warnings))


# --------------------------------------------------------------------------------------------
# keepalived


@dataclass(frozen=True)
class KeepalivedSettings:
    """The role's tunables (``nodeport_lb_keepalived_<name>``)."""

    vrrp_version: int = 3
    advert_int: float = 0.5
    virtual_router_id_base: int = 51
    # Unicast adverts to the listed load balancers only, and adverts accepted only from them
    # (check_unicast_src): with multicast and no authentication (VRRPv3 has none), any host
    # on the segment could take the VIPs.
    unicast: bool = True
    nopreempt: bool = False
    auth_pass: str = ""  # VRRPv2 only; the role generates one when it is empty
    interface: str = ""  # empty: the interface whose network holds the VIP
    check_interval: float = 1
    check_fall: int = 2
    check_rise: int = 2
    check_script: str = "/etc/keepalived/nodeport-lb-check-haproxy.sh"
    notify_script: str = "/etc/keepalived/nodeport-lb-notify.sh"
    haproxy_pidfile: str = "/run/haproxy.pid"

    @classmethod
    def parse(cls, given: Mapping[str, Any] | None) -> KeepalivedSettings:
        given = {k: v for k, v in dict(given or {}).items() if v is not None}
        _known_keys(given, {f.name for f in fields(cls)}, "keepalived settings")
        s = cls(**given)
        w = "nodeport_lb_keepalived_"
        version = _int(s.vrrp_version, w + "vrrp_version", 2, 3)
        try:
            advert = float(s.advert_int)
        except (TypeError, ValueError):
            raise PlanError(f"{w}advert_int: {s.advert_int!r} is not a number") from None
        if version == 2 and (advert != int(advert) or not 1 <= advert <= 255):
            raise PlanError(
                f"{w}advert_int: VRRPv2 adverts are whole seconds (1-255), got {advert}; "
                "use vrrp_version 3 for sub-second adverts"
            )
        if version == 3 and not 0.01 <= advert <= 40.95:
            raise PlanError(f"{w}advert_int: VRRPv3 adverts are 0.01-40.95 s, got {advert}")
        if s.auth_pass and version == 3:
            raise PlanError(
                f"{w}auth_pass: VRRPv3 has no authentication (RFC 5798 removed it); use "
                "vrrp_version 2 (whole-second adverts, slower failover) or leave it empty and "
                "rely on unicast peers and the network"
            )
        # no quote, '!' or '#' (keepalived's comment signs would cut it short silently)
        if s.auth_pass and not re.fullmatch(r"[A-Za-z0-9._+=@%-]{1,8}", str(s.auth_pass)):
            raise PlanError(
                f"{w}auth_pass: 1-8 printable characters (letters, digits, . _ + = @ % -)"
            )
        for name in ("check_script", "notify_script", "haproxy_pidfile"):
            value = getattr(s, name)
            # printed into keepalived.conf and root's scripts: a plain absolute path only
            if not isinstance(value, str) or not _ABSOLUTE_PATH.fullmatch(value):
                raise PlanError(f"{w}{name}: {value!r} is not a plain absolute path")
        _int(s.virtual_router_id_base, w + "virtual_router_id_base", 1, 255)
        _bool(s.unicast, w + "unicast")
        _bool(s.nopreempt, w + "nopreempt")
        if s.interface and not re.fullmatch(r"[A-Za-z0-9_.@:-]{1,15}", str(s.interface)):
            raise PlanError(f"nodeport_lb_lb_interface: {s.interface!r} is not an interface name")
        try:
            interval = float(s.check_interval)
        except (TypeError, ValueError):
            raise PlanError(f"{w}check_interval: {s.check_interval!r} is not a number") from None
        _int(s.check_fall, w + "check_fall", 1, 100)
        _int(s.check_rise, w + "check_rise", 1, 100)
        return cls(
            **{
                **asdict(s),
                "vrrp_version": version,
                "advert_int": int(advert) if advert == int(advert) else advert,
                "check_interval": int(interval) if interval == int(interval) else interval,
                "virtual_router_id_base": int(s.virtual_router_id_base),
                "check_fall": int(s.check_fall),
                "check_rise": int(s.check_rise),
            }
        )


@dataclass(frozen=True)
class VrrpInstance:
    name: str
    vip: str
    virtual_router_id: int
    interface: str
    priority: int
    unicast_src_ip: str
    unicast_peers: tuple[str, ...]


@dataclass(frozen=True)
class KeepalivedPlan:
    settings: KeepalivedSettings
    host: str
    instances: tuple[VrrpInstance, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fact_key(interface: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", interface)  # how Ansible names interface facts


def interface_for(vip: str, facts: Mapping[str, Any]) -> tuple[str, str] | None:
    """(interface, its address) for the interface whose IPv4 network holds ``vip``, read from
    Ansible's network facts; None when no interface does."""
    target = ipaddress.ip_address(vip)
    for name in sorted(facts.get("interfaces") or []):
        info = facts.get(_fact_key(name)) or {}
        addresses = [info.get("ipv4") or {}, *(info.get("ipv4_secondaries") or [])]
        for entry in addresses:
            if not entry.get("address") or not entry.get("netmask"):
                continue
            network = ipaddress.ip_network(f"{entry['address']}/{entry['netmask']}", strict=False)
            if target in network and network.prefixlen < 32 and entry["address"] != vip:
                return name, entry["address"]
    return None


def plan_keepalived(
    vips: Any,
    host: str,
    lbs: Any,
    facts: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> KeepalivedPlan:
    """One VRRP instance per VIP for load balancer ``host`` of the group ``lbs``.

    Priority: the host's ``nodeport_lb_keepalived_priority`` or, by default, 150 for the first
    load balancer of the group, 140 for the second, ... (the first one holds the VIPs).
    """
    config = KeepalivedSettings.parse(settings)
    vip_list = validate_vips(vips)
    lb_list = _hosts(lbs, "lbs")
    me = next((lb for lb in lb_list if lb.name == host), None)
    if me is None:
        raise PlanError(f"{host} is not in the group lbs ({[lb.name for lb in lb_list]})")
    position = lb_list.index(me)
    priority = me.priority if me.priority is not None else max(150 - 10 * position, 1)
    if config.virtual_router_id_base + len(vip_list) - 1 > 255:
        raise PlanError(
            "nodeport_lb_keepalived_virtual_router_id_base: "
            f"{config.virtual_router_id_base} + {len(vip_list)} VIPs passes 255"
        )
    instances = []
    for index, vip in enumerate(vip_list):
        interface, own_address = config.interface, me.address
        if not interface:
            found = interface_for(vip, facts or {})
            if found is None:
                raise PlanError(
                    f"{host}: no interface has an IPv4 network holding the VIP {vip}; set "
                    "nodeport_lb_lb_interface"
                )
            interface, own_address = found
        peers = tuple(lb.address for lb in lb_list if lb is not me) if config.unicast else ()
        for address in (*peers, own_address) if config.unicast else ():
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise PlanError(
                    f"{host}: unicast VRRP needs the load balancers' IPv4 addresses, got "
                    f"{address!r}; set nodeport_lb_lb_address on each load balancer"
                ) from None
        instances.append(
            VrrpInstance(
                name=f"nodeport_lb_vip_{index + 1}",
                vip=vip,
                virtual_router_id=config.virtual_router_id_base + index,
                interface=interface,
                priority=priority,
                unicast_src_ip=own_address if config.unicast else "",
                unicast_peers=peers,
            )
        )
    return KeepalivedPlan(config, host, tuple(instances))
