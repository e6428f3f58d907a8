"""What the load-balancer roles are given, read and checked before anything is rendered: the
roles' tunables, a Service's own ``load_balancer:`` settings, the VIPs and the inventory hosts.

Each setting is a dataclass field whose metadata says how a given value is read
(``setting(default, parser)``); ``parse_settings`` applies them all, so a bad value raises
``PlanError`` naming the inventory variable, and every value reaching haproxy.cfg or
keepalived.conf has passed one of the parsers below (none lets a newline or a second word in).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, TypeVar

from nodeport_lb.defaults import AGENT_CHECK_PORT, PROXY_HEALTHZ_PORT

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


class PlanError(ValueError):
    """A user-given value the load balancers cannot be built from (message says why)."""


# --------------------------------------------------------------------------------------------
# parsers: (value, the variable's name for errors) -> the value as the plan uses it

Parser = Callable[[Any, str], Any]

_TIME = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?$")
_ABSOLUTE_PATH = re.compile(r"/[A-Za-z0-9._/@+-]*")
_UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_LOG_TARGET = re.compile(r"[A-Za-z0-9._/@:\[\]-]+( [a-z0-9]+){0,3}")
_HAPROXY_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def haproxy_time(value: Any, where: str) -> str:
    text = str(value)
    if isinstance(value, bool) or not _TIME.fullmatch(text):
        raise PlanError(f"{where}: {value!r} is not an HAProxy time (e.g. 500ms, 1s, 2m)")
    return text


def integer(low: int, high: int) -> Parser:
    def parse(value: Any, where: str) -> int:
        if isinstance(value, bool) or (not isinstance(value, int) and not str(value).isdigit()):
            raise PlanError(f"{where}: {value!r} is not an integer")
        number = int(value)
        if not low <= number <= high:
            raise PlanError(f"{where}: {number} is out of range ({low}-{high})")
        return number

    return parse


def number(value: Any, where: str) -> int | float:
    """A number of seconds; whole ones as int, so the config reads ``1``, not ``1.0``."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{where}: {value!r} is not a number") from None
    return int(result) if result == int(result) else result


def boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise PlanError(f"{where}: {value!r} is not a boolean (true/false)")
    return value


def one_of(*choices: str) -> Parser:
    def parse(value: Any, where: str) -> str:
        if value not in choices:
            raise PlanError(f"{where}: {value!r} is not one of {', '.join(choices)}")
        return str(value)

    return parse


def optional(parse: Parser, unset: tuple[Any, ...] = (None,)) -> Parser:
    """``parse`` for a value that may be left unset (``unset`` values pass as they are)."""
    return lambda value, where: value if value in unset else parse(value, where)


def matching(
    pattern: re.Pattern[str], form: str = "", *, message: str = "", any_type: bool = False
) -> Parser:
    """A value printed into a config or a root script: the whole of it matches ``pattern``.
    ``any_type``: a number given for it is read as its text (a numeric password)."""
    message = message or "{where}: {value!r} is not " + form

    def parse(value: Any, where: str) -> str:
        text = str(value) if any_type and not isinstance(value, bool) else value
        if not isinstance(text, str) or not pattern.fullmatch(text):
            raise PlanError(message.format(where=where, value=value))
        return text

    return parse


def text(value: Any, where: str) -> str:
    return str(value or "")


def setting(default: Any, parse: Parser, var: str = "") -> Any:
    """A settings field: its default, how a given value is read, and the inventory variable
    errors name (default: the settings' prefix and the field's name)."""
    return field(default=default, metadata={"parse": parse, "var": var})


T = TypeVar("T", bound="DataclassInstance")


def parse_settings(
    cls: type[T],
    given: Mapping[str, Any] | None,
    prefix: str,
    what: str,
    *,
    defaults: Mapping[str, Any] | None = None,
    also_known: Iterable[str] = (),
) -> T:
    """``cls`` from the given values, each read by its field's parser; unset and null ones
    take the field's default (or the one in ``defaults``). Unknown keys are refused."""
    given = dict(given or {})
    settings = [f for f in fields(cls) if "parse" in f.metadata]
    known = {f.name for f in settings}
    _known_keys(given, known | set(also_known), what)
    defaults = defaults or {}
    values = {}
    for f in settings:
        value = given.get(f.name)
        if value is None:
            value = defaults.get(f.name, f.default)
        values[f.name] = f.metadata["parse"](value, f.metadata["var"] or prefix + f.name)
    return cls(**values)


def _known_keys(given: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise PlanError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


# --------------------------------------------------------------------------------------------
# VIPs and inventory hosts


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


def parse_hosts(items: Any, where: str) -> list[Host]:
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
            priority = integer(1, 254)(priority, f"{name}: nodeport_lb_keepalived_priority")
        if any(h.name == name for h in hosts):
            raise PlanError(f"{where}[{index}]: host {name} is listed twice")
        agent = boolean(item.get("agent", True), f"{name}: nodeport_lb_node_agent")
        hosts.append(Host(name, address, priority, agent))
    return hosts


# --------------------------------------------------------------------------------------------
# the haproxy role's tunables

BALANCE_ALGORITHMS = ("source", "roundrobin", "leastconn", "static-rr", "first", "random")
_PORT = integer(1, 65535)
_COUNT = integer(1, 100)
_PATH = matching(_ABSOLUTE_PATH, "an absolute path")


@dataclass(frozen=True)
class HAProxySettings:
    """The role's tunables (``nodeport_lb_haproxy_<name>``)."""

    inter: str = setting("1s", haproxy_time)
    fall: int = setting(2, _COUNT)
    rise: int = setting(2, _COUNT)
    balance: str = setting("source", one_of(*BALANCE_ALGORITHMS))
    retries: int = setting(3, integer(0, 100))
    redispatch: bool = setting(True, boolean)
    timeout_connect: str = setting("5s", haproxy_time)
    timeout_client: str = setting("1m", haproxy_time)
    timeout_server: str = setting("1m", haproxy_time)
    timeout_check: str = setting("1s", haproxy_time)
    # None: HAProxy sizes maxconn to the file-descriptor limit it gets (a fixed value above
    # what the host's hard limit allows makes HAProxy refuse to start)
    maxconn: int | None = setting(None, optional(integer(1, 10_000_000)))
    healthz_port: int = setting(PROXY_HEALTHZ_PORT, _PORT, "nodeport_lb_healthz_port")
    agent_check_port: int = setting(AGENT_CHECK_PORT, _PORT, "nodeport_lb_agent_check_port")
    agent_inter: str = setting("2s", haproxy_time)
    # each of these is printed into haproxy.cfg: one word (or the log's few) and nothing more
    stats_socket: str = setting("/run/haproxy/admin.sock", _PATH)
    log: str = setting(
        "/dev/log local0",
        matching(_LOG_TARGET, "a log target and facility, e.g. /dev/log local0"),
    )
    chroot: str = setting("/var/lib/haproxy", _PATH)
    # Who HAProxy runs as: set by the systemd unit (User=/Group= with the capabilities it
    # needs), never by a `user` line, which HAProxy refuses together with usesrc clientip.
    user: str = setting("haproxy", matching(_UNIX_NAME, "a user name"))
    group: str = setting("haproxy", matching(_UNIX_NAME, "a group name"))

    @classmethod
    def parse(cls, given: Mapping[str, Any] | None) -> HAProxySettings:
        return parse_settings(cls, given, "nodeport_lb_haproxy_", "haproxy settings")


# --------------------------------------------------------------------------------------------
# the keepalived role's tunables

# printed into keepalived.conf and root's scripts: a plain absolute path only
_SCRIPT_PATH = matching(_ABSOLUTE_PATH, "a plain absolute path")


def _optional_word(pattern: str, message: str) -> Parser:
    """A word printed into keepalived.conf, empty when unset; a number given for it is read as
    its text."""
    return optional(matching(re.compile(pattern), message=message, any_type=True), unset=("",))


# No quote, '!' or '#': keepalived's comment signs would cut it short silently.
_AUTH_PASS = _optional_word(
    r"[A-Za-z0-9._+=@%-]{1,8}",
    "{where}: 1-8 printable characters (letters, digits, . _ + = @ % -)",
)
_INTERFACE = _optional_word(
    r"[A-Za-z0-9_.@:-]{1,15}", "{where}: {value!r} is not an interface name"
)


@dataclass(frozen=True)
class KeepalivedSettings:
    """The role's tunables (``nodeport_lb_keepalived_<name>``)."""

    vrrp_version: int = setting(3, integer(2, 3))
    advert_int: float = setting(0.5, number)
    virtual_router_id_base: int = setting(51, integer(1, 255))
    # Unicast adverts to the listed load balancers only, and adverts accepted only from them
    # (check_unicast_src): with multicast and no authentication (VRRPv3 has none), any host
    # on the segment could take the VIPs.
    unicast: bool = setting(True, boolean)
    nopreempt: bool = setting(False, boolean)
    # VRRPv2 only; the role generates one when it is empty
    auth_pass: str = setting("", _AUTH_PASS)
    # empty: the interface whose network holds the VIP
    interface: str = setting("", _INTERFACE, "nodeport_lb_lb_interface")
    check_interval: float = setting(1, number)
    check_fall: int = setting(2, _COUNT)
    check_rise: int = setting(2, _COUNT)
    check_script: str = setting("/etc/keepalived/nodeport-lb-check-haproxy.sh", _SCRIPT_PATH)
    notify_script: str = setting("/etc/keepalived/nodeport-lb-notify.sh", _SCRIPT_PATH)
    haproxy_pidfile: str = setting("/run/haproxy.pid", _SCRIPT_PATH)

    @classmethod
    def parse(cls, given: Mapping[str, Any] | None) -> KeepalivedSettings:
        settings = parse_settings(cls, given, "nodeport_lb_keepalived_", "keepalived settings")
        w, advert = "nodeport_lb_keepalived_", settings.advert_int
        if settings.vrrp_version == 2 and (advert != int(advert) or not 1 <= advert <= 255):
            raise PlanError(
                f"{w}advert_int: VRRPv2 adverts are whole seconds (1-255), got {advert}; "
                "use vrrp_version 3 for sub-second adverts"
            )
        if settings.vrrp_version == 3 and not 0.01 <= advert <= 40.95:
            raise PlanError(f"{w}advert_int: VRRPv3 adverts are 0.01-40.95 s, got {advert}")
        if settings.auth_pass and settings.vrrp_version == 3:
            raise PlanError(
                f"{w}auth_pass: VRRPv3 has no authentication (RFC 5798 removed it); use "
                "vrrp_version 2 (whole-second adverts, slower failover) or leave it empty and "
                "rely on unicast peers and the network"
            )
        return settings


# --------------------------------------------------------------------------------------------
# a Service's own load_balancer: settings

CLIENT_ADDRESS_MODES = ("transparent", "proxy-v2", "proxy-v1", "forwardfor", "none")
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

    # Only LoadBalancer Services get a VIP by default; others on request.
    enabled: bool = setting(False, boolean)
    mode: str = setting("tcp", one_of("tcp", "http"))
    # one of CLIENT_ADDRESS_MODES; its default depends on the Service and the nodes (parse)
    client_address: str = setting(None, optional(one_of(*CLIENT_ADDRESS_MODES)))
    healthcheck: str = setting("http", one_of("http", "tcp"))
    agent_check: bool = setting(False, boolean)
    vip: str = setting("", text)
    balance: str = setting("", optional(one_of(*BALANCE_ALGORITHMS), unset=("",)))
    warnings: tuple[str, ...] = ()

    # deprecated: client_address proxy-v1 / proxy-v2, client_address forwardfor
    LEGACY_KEYS = ("proxy_protocol", "forwardfor")

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
        options = parse_settings(
            cls,
            {k: v for k, v in given.items() if k not in cls.LEGACY_KEYS},
            f"{where}.",
            where,
            defaults={"enabled": service_type == "LoadBalancer", "agent_check": local},
            also_known=cls.LEGACY_KEYS,
        )
        warnings: list[str] = []
        client_address = _client_address(
            given, options, local, where, nodes_without_agent, warnings
        )
        if options.agent_check and not local:
            raise PlanError(
                f"{where}.agent_check: the node agent weighs a node by its local pods, which "
                "only means something for externalTrafficPolicy: Local (with Cluster every "
                "node forwards to every pod)"
            )
        return replace(options, client_address=client_address, warnings=tuple(warnings))


def _client_address(
    given: Mapping[str, Any],
    options: LoadBalancerOptions,
    local: bool,
    where: str,
    nodes_without_agent: tuple[str, ...],
    warnings: list[str],
) -> str:
    """How the pods learn the client's address: as given, as the deprecated keys meant, or
    the default for the Service (transparent for Local where every node runs the agent)."""
    legacy = _legacy_client_address(given, where, warnings)
    client_address = options.client_address
    if client_address is not None:
        if legacy is not None and legacy != client_address:
            raise PlanError(
                f"{where}: client_address: {client_address} contradicts the deprecated "
                f"proxy_protocol/forwardfor (= {legacy}); keep client_address only"
            )
    elif legacy is not None:
        client_address = legacy
    elif local and not nodes_without_agent:
        client_address = "transparent"
    elif options.mode == "http":
        client_address = "forwardfor"
    else:
        client_address = "none"
    if client_address == "forwardfor" and options.mode != "http":
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
    if local and client_address == "none" and options.enabled:
        reason = (
            f"{', '.join(nodes_without_agent)} do(es) not run the nodeport-lb agent, so "
            "transparent mode is off"
            if nodes_without_agent and "client_address" not in given
            else "nothing hands it on"
        )
        warnings.append(LOCAL_WITHOUT_CLIENT_ADDRESS.format(where=where, reason=reason))
    return client_address


def _legacy_client_address(given: Mapping[str, Any], where: str, warnings: list[str]) -> str | None:
    """The client_address the deprecated proxy_protocol / forwardfor keys mean (None: unset)."""
    meant: list[str] = []
    if "proxy_protocol" in given:
        proxy = given["proxy_protocol"]
        if proxy in (False, None):
            proxy = "none"
        proxy = one_of("none", "v1", "v2")(proxy, f"{where}.proxy_protocol")
        mode = {"v1": "proxy-v1", "v2": "proxy-v2"}.get(proxy, "none")
        warnings.append(
            DEPRECATED_CLIENT_ADDRESS_KEYS.format(where=where, key="proxy_protocol", mode=mode)
        )
        if mode != "none":
            meant.append(mode)
    if "forwardfor" in given:
        forwardfor = boolean(given["forwardfor"], f"{where}.forwardfor")
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
