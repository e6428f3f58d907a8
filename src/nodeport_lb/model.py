"""The one model of a Kubernetes v1 Service that every part of nodeport-lb reads.

A Service enters either as module-style options (snake_case, the option tables below) or as
a raw manifest; ``apply_defaults`` fills in what the API server would,
``validation.validate_service`` checks it, and ``Service.from_manifest`` gives the typed view
the agent, the HAProxy plan and the Terraform driver use.
"""

from __future__ import annotations

import copy
import json
import re
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from nodeport_lb.defaults import (
    DEFAULT_NODE_PORT_HIGH,
    DEFAULT_NODE_PORT_LOW,
    DEFAULT_NODE_PORT_RANGE,
)

DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800
MAX_CLIENT_IP_AFFINITY_SECONDS = 86400


@dataclass(frozen=True)
class NodePortRange:
    """The API server's ``--service-node-port-range`` (inclusive on both ends)."""

    low: int = DEFAULT_NODE_PORT_LOW
    high: int = DEFAULT_NODE_PORT_HIGH

    @classmethod
    def parse(cls, text: str) -> NodePortRange:
        match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text or "")
        if not match:
            raise ValueError(
                f"invalid node port range {text!r}: expected LOW-HIGH, "
                f"e.g. {DEFAULT_NODE_PORT_RANGE}"
            )
        low, high = int(match[1]), int(match[2])
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"invalid node port range {text!r}: need 1 <= LOW <= HIGH <= 65535")
        return cls(low, high)

    def __contains__(self, port: object) -> bool:
        if isinstance(port, bool) or not isinstance(port, int):
            return False
        return self.low <= port <= self.high

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.low, self.high + 1))

    def __len__(self) -> int:
        return self.high - self.low + 1

    def __str__(self) -> str:
        return f"{self.low}-{self.high}"

    def out_of_range(self) -> str:
        return (
            "provided port is not in the valid range. "
            f"The range of valid ports is {self.low}-{self.high}"
        )


def is_externally_accessible(spec: Mapping[str, Any]) -> bool:
    svc_type = spec.get("type")
    return svc_type in ("LoadBalancer", "NodePort") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs"))
    )


def needs_health_check(spec: Mapping[str, Any]) -> bool:
    """Only LoadBalancer + eTP Local Services get a healthCheckNodePort."""
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def is_service_manifest(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("apiVersion") == "v1" and obj.get("kind") == "Service"


def apply_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Fill in the fields the API server defaults (pkg/apis/core/v1/defaults.go).

    As there, an explicit ``""`` (or null) counts as unset: ``type: ""`` becomes ClusterIP,
    ``sessionAffinity: ""`` None, a port's ``protocol: ""`` TCP; ``sessionAffinityConfig`` is
    dropped when the affinity is None. Returns a new dict, a deep copy the caller may change
    freely; fields of the wrong type are left alone for validation to report.
    """
    return _fill_defaults(copy.deepcopy(dict(manifest)))


def with_defaults(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """``apply_defaults`` copying only what defaulting changes (the object, its metadata, its
    spec, the ports list and each port); everything else is shared with ``manifest``, so
    neither may be changed afterwards. For readers that keep objects as they are (the agent:
    a deep copy of every object is most of the cost of reading 10,000 Services)."""
    obj = dict(manifest)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"] = dict(obj["metadata"])
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec = obj["spec"] = dict(spec)
        ports = spec.get("ports")
        if isinstance(ports, list):
            spec["ports"] = [dict(p) if isinstance(p, dict) else p for p in ports]
    return _fill_defaults(obj)


def _fill_defaults(obj: dict[str, Any]) -> dict[str, Any]:
    """Defaulting in place; changes only the containers ``with_defaults`` copies (a new
    ``sessionAffinityConfig`` replaces the old one, never changes it)."""
    meta = obj.setdefault("metadata", {})
    if meta is None:
        meta = obj["metadata"] = {}
    if isinstance(meta, dict) and not meta.get("namespace"):
        meta["namespace"] = "default"
    spec = obj.setdefault("spec", {})
    if spec is None:
        spec = obj["spec"] = {}
    if not isinstance(spec, dict):
        return obj
    if spec.get("sessionAffinity") in (None, ""):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        timeout = client_ip.get("timeoutSeconds") if isinstance(client_ip, dict) else None
        if timeout is None:
            # the API server replaces the whole config, whatever else it held
            spec["sessionAffinityConfig"] = {
                "clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}
            }
    if spec.get("type") in (None, ""):
        spec["type"] = "ClusterIP"
    ports = spec.get("ports")
    for port in ports if isinstance(ports, list) else []:
        if not isinstance(port, dict):
            continue
        if port.get("protocol") in (None, ""):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if is_externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec["type"] in (
        "ClusterIP",
        "NodePort",
        "LoadBalancer",
    ):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec["type"] == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    return obj


@dataclass(frozen=True)
class ServicePort:
    name: str
    protocol: str
    port: int
    target_port: int | str
    node_port: int = 0  # 0: none allocated (yet)

    @property
    def key(self) -> str:
        """How the module reports this port: its name, or its number when it has none."""
        return self.name or str(self.port)


@dataclass(frozen=True)
class Service:
    """A validated, defaulted v1 Service (typed view over ``manifest``)."""

    name: str
    namespace: str
    type: str
    ports: tuple[ServicePort, ...]
    selector: Mapping[str, str] = field(default_factory=dict)
    external_traffic_policy: str | None = None
    internal_traffic_policy: str | None = "Cluster"
    health_check_node_port: int = 0
    session_affinity: str = "None"
    session_affinity_timeout: int | None = None
    allocate_load_balancer_node_ports: bool | None = None
    load_balancer_source_ranges: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    manifest: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_local(self) -> bool:
        return self.external_traffic_policy == "Local"

    @property
    def needs_health_check(self) -> bool:
        return self.type == "LoadBalancer" and self.is_local

    @property
    def node_ports(self) -> dict[str, int]:
        return {p.key: p.node_port for p in self.ports if p.node_port}

    @classmethod
    def from_manifest(
        cls, manifest: Mapping[str, Any], *, defaulted: bool = False, keep_manifest: bool = True
    ) -> Service:
        """Typed view of a manifest that passed ``validate_service`` (defaults applied here,
        unless ``defaulted`` says the caller's manifest has them already). ``keep_manifest``
        False leaves ``manifest`` empty, for a reader of the typed fields only that keeps
        thousands of Services."""
        from nodeport_lb.validation.ip import canonical_cidr  # the package imports this one

        # a Service is never changed: sharing the manifest's fields is safe
        obj = manifest if defaulted else with_defaults(manifest)
        meta, spec = obj["metadata"], obj["spec"]
        affinity_config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        return cls(
            name=meta["name"],
            namespace=meta["namespace"],
            type=spec["type"],
            ports=tuple(
                ServicePort(
                    name=p.get("name") or "",
                    protocol=p["protocol"],
                    port=p["port"],
                    target_port=p["targetPort"],
                    node_port=p.get("nodePort") or 0,
                )
                for p in spec.get("ports") or []
            ),
            selector=dict(spec.get("selector") or {}),
            external_traffic_policy=spec.get("externalTrafficPolicy"),
            internal_traffic_policy=spec.get("internalTrafficPolicy"),
            health_check_node_port=spec.get("healthCheckNodePort") or 0,
            session_affinity=spec["sessionAffinity"],
            session_affinity_timeout=affinity_config.get("timeoutSeconds"),
            allocate_load_balancer_node_ports=spec.get("allocateLoadBalancerNodePorts"),
            # canonical, so what reaches nft or a cloud API is exactly the network meant
            load_balancer_source_ranges=tuple(
                canonical_cidr(r) for r in spec.get("loadBalancerSourceRanges") or []
            ),
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            manifest=obj if keep_manifest else {},
        )


PROTOCOLS = ("TCP", "UDP", "SCTP")
TRAFFIC_POLICIES = ("Cluster", "Local")


@dataclass(frozen=True)
class Option:
    """One option of the nodeport_service module: its name (snake_case), the manifest field it
    becomes, its Ansible argument spec and its documentation. The module's argument spec and
    the options part of its DOCUMENTATION (scripts/module_docs.py) are built from these tables,
    so an option is declared here once."""

    name: str
    field: str
    argument_spec: Mapping[str, Any]
    description: tuple[str, ...] = ()  # paragraphs, in ansible-doc markup (O(), V(), C())
    # When the manifest gets the field: "set" (a value other than null, "", 0 or empty; else
    # it is left out for the API server's defaulting), "given" (any value but null), "always".
    present: str = "set"


# The Service options (ports: see PORT_OPTIONS), in the order the module documents them.
SERVICE_OPTION_TABLE = (
    Option(
        "name",
        "metadata.name",
        {"type": "str"},
        ("Service name (a DNS-1035 label). Required unless O(definition) is given.",),
        present="always",
    ),
    Option(
        "namespace",
        "metadata.namespace",
        {"type": "str", "default": "default"},
        ("Namespace of the Service.",),
    ),
    Option(
        "type",
        "spec.type",
        {"type": "str", "choices": ["ClusterIP", "NodePort", "LoadBalancer"]},
        ("Service type. As on the API server, V(ClusterIP) when omitted (which has no nodePort).",),
    ),
    Option("selector", "spec.selector", {"type": "dict"}, ("Pod labels the Service selects.",)),
    Option(
        "ports",
        "spec.ports",
        {"type": "list", "elements": "dict"},
        ("Service ports. With more than one port, every port needs a O(ports[].name).",),
        present="always",
    ),
    Option(
        "external_traffic_policy",
        "spec.externalTrafficPolicy",
        {"type": "str", "choices": list(TRAFFIC_POLICIES)},
        (
            "V(Local) keeps the client's source IP and only nodes with a local pod take "
            "traffic; V(Cluster) (the API server's default) spreads over all pods but SNATs.",
        ),
    ),
    Option(
        "health_check_node_port",
        "spec.healthCheckNodePort",
        {"type": "int"},
        (
            "Explicit healthCheckNodePort (only for O(type=LoadBalancer) with "
            "O(external_traffic_policy=Local)). Allocated when omitted, kept stable across "
            "runs, and released when the Service goes back to Cluster.",
        ),
    ),
    Option(
        "internal_traffic_policy",
        "spec.internalTrafficPolicy",
        {"type": "str", "choices": list(TRAFFIC_POLICIES)},
        ("Policy for traffic from inside the cluster.",),
    ),
    Option(
        "session_affinity",
        "spec.sessionAffinity",
        {"type": "str", "choices": ["None", "ClientIP"]},
        ("V(ClientIP) sends a client to the same pod for O(session_affinity_timeout).",),
    ),
    Option(
        "session_affinity_timeout",
        "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
        {"type": "int"},
        ("ClientIP affinity timeout in seconds (1..86400; API default 10800).",),
        present="given",
    ),
    Option(
        "allocate_load_balancer_node_ports",
        "spec.allocateLoadBalancerNodePorts",
        {"type": "bool"},
        ("For LoadBalancer Services, whether nodePorts are allocated (API default true).",),
        present="given",
    ),
    Option(
        "load_balancer_source_ranges",
        "spec.loadBalancerSourceRanges",
        {"type": "list", "elements": "str"},
        ("Client CIDRs allowed to reach a LoadBalancer Service; others are dropped.",),
    ),
    Option("labels", "metadata.labels", {"type": "dict"}, ("Labels of the Service object.",)),
    Option(
        "annotations",
        "metadata.annotations",
        {"type": "dict"},
        ("Annotations of the Service object.",),
    ),
)
# The options of one port and the field of spec.ports[] each becomes.
PORT_OPTIONS = (
    Option(
        "name",
        "name",
        {"type": "str"},
        ("Port name (a DNS-1123 label); the key of RV(node_ports).",),
    ),
    Option(
        "port",
        "port",
        {"type": "int", "required": True},
        ("Port of the Service (and of the load balancer in front of it).",),
    ),
    Option(
        "target_port",
        "targetPort",
        {"type": "raw"},
        ("Port (number or name) on the pods. Defaults to O(ports[].port).",),
    ),
    Option(
        "node_port",
        "nodePort",
        {"type": "int"},
        (
            "Port opened on every node, in O(service_node_port_range). Allocated when omitted, "
            "and kept stable across runs.",
        ),
    ),
    Option(
        "protocol",
        "protocol",
        {"type": "str", "choices": list(PROTOCOLS), "default": "TCP"},
        ("Protocol.",),
    ),
    Option(
        "app_protocol",
        "appProtocol",
        {"type": "str"},
        (
            "The port's application protocol (C(appProtocol)), for example V(http) or "
            "V(kubernetes.io/h2c); some cloud load balancers pick their health check by it.",
        ),
    ),
)


def service_option_names() -> tuple[str, ...]:
    return tuple(option.name for option in SERVICE_OPTION_TABLE)


def service_argument_spec() -> dict[str, Any]:
    """The Service options as an Ansible argument spec (ports with their suboptions)."""
    spec = {option.name: dict(option.argument_spec) for option in SERVICE_OPTION_TABLE}
    spec["ports"]["options"] = {option.name: dict(option.argument_spec) for option in PORT_OPTIONS}
    return spec


def _put(obj: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj.setdefault(part, {})
    obj[last] = value


def _present(option: Option, value: Any) -> bool:
    if option.present == "always":
        return True
    if option.present == "given":
        return value is not None
    return value is not None and value is not False and value not in ("", 0, [], {})


def manifest_from_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A v1 Service manifest from module-style options, field by field from the tables.

    ``options`` uses the module's names (``SERVICE_OPTION_TABLE``, ports ``PORT_OPTIONS``).
    Unset options are left out so defaulting works as on the API server.
    """
    ports = []
    for port in options.get("ports") or []:
        if not isinstance(port, Mapping):
            ports.append(port)  # kept as is so validation reports it with its path
            continue
        ports.append(
            {o.field: port[o.name] for o in PORT_OPTIONS if port.get(o.name) not in (None, "")}
        )
    manifest: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {}, "spec": {}}
    for option in SERVICE_OPTION_TABLE:
        value = ports if option.name == "ports" else options.get(option.name)
        if _present(option, value):
            _put(manifest, option.field, copy.deepcopy(value))
    return manifest


def _get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def options_from_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The module-style options a manifest holds (the inverse of ``manifest_from_options``):
    every option of the tables whose field is set, ports with their port options."""
    options = {}
    for option in SERVICE_OPTION_TABLE:
        value = _get(manifest, option.field)
        if option.name == "ports":
            value = [
                {o.name: port[o.field] for o in PORT_OPTIONS if port.get(o.field) is not None}
                for port in value or []
            ]
        if value is not None:
            options[option.name] = copy.deepcopy(value)
    return options


def _description_lines(paragraphs: tuple[str, ...], indent: str) -> list[str]:
    lines = [f"{indent}description:\n"]
    for paragraph in paragraphs:
        if yaml.safe_load(f"- {paragraph}") != [paragraph]:
            paragraph = json.dumps(paragraph)  # YAML would read it otherwise: quote it
            lines.append(f"{indent}  - {paragraph}\n")
            continue
        wrapped = textwrap.wrap(paragraph, width=DOC_WIDTH - len(indent) - 4)
        lines.append(f"{indent}  - {wrapped[0]}\n")
        lines += [f"{indent}    {line}\n" for line in wrapped[1:]]
    return lines


def _option_lines(
    options: tuple[Option, ...], indent: str, suboptions: Mapping[str, tuple[Option, ...]]
) -> list[str]:
    lines = []
    for option in options:
        lines.append(f"{indent}{option.name}:\n")
        lines += _description_lines(option.description, indent + "  ")
        for key in ("type", "elements", "choices", "default", "required"):
            if key in option.argument_spec:
                value = option.argument_spec[key]
                plain = isinstance(value, str) and yaml.safe_load(value) == value
                lines.append(f"{indent}  {key}: {value if plain else json.dumps(value)}\n")
        if option.name in suboptions:
            lines.append(f"{indent}  suboptions:\n")
            lines += _option_lines(suboptions[option.name], indent + "    ", {})
    return lines


DOC_WIDTH = 100


def options_documentation() -> str:
    """The Service options as the module's DOCUMENTATION lists them (YAML under
    ``options:``), ports with their suboptions: written from the tables, so a new option is
    documented where it is declared."""
    text = "".join(_option_lines(SERVICE_OPTION_TABLE, "  ", {"ports": PORT_OPTIONS}))
    documented = yaml.safe_load(text)
    assert list(documented) == list(service_option_names()), "the options did not read back"
    return text
