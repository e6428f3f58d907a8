"""Turn a Service into the Terraform variables of a cloud load-balancer module.

The rule the whole project exists for lives here and in terraform/modules/lb-healthcheck: an
externalTrafficPolicy: Local Service is health-checked over HTTP on its healthCheckNodePort.
Refusing early (before Terraform runs) lets us explain why.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from nodeport_lb.cloud import CloudError
from nodeport_lb.defaults import DEFAULT_NODE_PORT_RANGE, PROXY_HEALTHZ_PATH, PROXY_HEALTHZ_PORT
from nodeport_lb.health_check import HealthCheckError, service_health_check
from nodeport_lb.model import NodePortRange, Service, ServicePort

HEALTHCHECK_MODES = ("http", "https", "tcp")


@dataclass(frozen=True)
class ProviderSpec:
    """What differs between clouds: the module, the names and defaults of its variables."""

    name: str
    module: str  # directory under terraform/modules
    name_limit: int  # longest resource name the cloud accepts
    defaults: dict[str, Any]  # health-check settings, as module variables
    local_path_var: str  # the variable holding the HTTP check's path


PROVIDERS: dict[str, ProviderSpec] = {
    # HTTP on the hcnp with the timing of a working Exoscale setup (the annotations it accepts).
    "exoscale": ProviderSpec(
        name="exoscale",
        module="exoscale-nlb",
        name_limit=255,
        defaults={
            "healthcheck_uri": "/",
            "healthcheck_interval": 10,
            "healthcheck_timeout": 3,
            "healthcheck_retries": 1,
            "strategy": "source-hash",
        },
        local_path_var="healthcheck_uri",
    ),
    # What AWS's cloud controller does for Local Services: HTTP /healthz, thresholds 2/2.
    "aws": ProviderSpec(
        name="aws",
        module="aws-nlb",
        name_limit=32,
        defaults={
            "healthcheck_path": "/healthz",
            "healthcheck_interval": 10,
            "healthcheck_timeout": 6,
            "healthy_threshold": 2,
            "unhealthy_threshold": 2,
        },
        local_path_var="healthcheck_path",
    ),
}


@dataclass
class RenderOptions:
    port_name: str | None = None
    healthcheck_mode: str = "http"
    node_addresses: tuple[str, ...] = ()
    node_port_range: str = DEFAULT_NODE_PORT_RANGE
    extra: dict[str, Any] | None = None  # provider options and --var, override everything


def render_variables(provider: str, service: Service, options: RenderOptions) -> dict[str, Any]:
    spec = PROVIDERS[provider]
    port = select_port(service, options.port_name)
    if not port.node_port:
        raise CloudError(
            f"{_ref(service)} port {port.port} has no nodePort: a cloud load balancer forwards to "
            "a nodePort, so the Service must be of type NodePort or LoadBalancer"
        )
    _in_range(port.node_port, "nodePort", service, options)
    mode = options.healthcheck_mode
    if mode not in HEALTHCHECK_MODES:
        raise CloudError(
            f"--healthcheck-mode {mode!r}: expected one of {', '.join(HEALTHCHECK_MODES)}"
        )

    try:
        check = service_health_check(service, protocol=mode, fix="--healthcheck-mode http")
    except HealthCheckError as exc:
        raise CloudError(str(exc)) from None
    path: dict[str, Any] = {}
    if check.on_hcnp:
        healthcheck_port = _in_range(check.port, "healthCheckNodePort", service, options)
    else:
        # A cloud module names its check's port even for TCP: the node proxy's, as for HTTP.
        healthcheck_port = PROXY_HEALTHZ_PORT if check.port is None else check.port
        path = {spec.local_path_var: PROXY_HEALTHZ_PATH}
    variables: dict[str, Any] = {
        "name": resource_name(service, port, spec.name_limit),
        "protocol": port.protocol.lower() if provider == "exoscale" else port.protocol.upper(),
        "port": port.port,
        "target_port": port.node_port,
        "external_traffic_policy": service.external_traffic_policy,
        "node_port_range": options.node_port_range,
        "healthcheck_mode": mode,
        "healthcheck_port": healthcheck_port,
        **spec.defaults,
        **path,
    }
    if provider == "aws" and options.node_addresses:
        variables["targets"] = list(options.node_addresses)
    variables.update(options.extra or {})
    return variables


def _in_range(port: int | None, what: str, service: Service, options: RenderOptions) -> int:
    assert port is not None  # only called with a port the Service has
    if port not in parse_range(options.node_port_range):
        raise CloudError(
            f"{_ref(service)} {what} {port} is outside the node port range "
            f"{options.node_port_range} (--service-node-port-range)"
        )
    return port


def select_port(service: Service, port_name: str | None) -> ServicePort:
    if not service.ports:
        raise CloudError(f"{_ref(service)} has no ports")
    if port_name is not None:
        for port in service.ports:
            if port.name == port_name:
                return port
        raise CloudError(f"{_ref(service)} has no port named {port_name!r} ({_names(service)})")
    if len(service.ports) > 1:
        raise CloudError(
            f"{_ref(service)} has several ports ({_names(service)}); one load-balancer module "
            "serves one port: pick it with --port-name, and add the others with --port-name and "
            "--workdir of their own (for Exoscale, --nlb-id shares the first one's NLB)"
        )
    return service.ports[0]


NAME_HASH_LENGTH = 8


def resource_name(service: Service, port: ServicePort, limit: int) -> str:
    """``<namespace>-<name>[-<port>]``; cut to ``limit`` with a hash of the whole name, so two
    long names that share their beginning still get different cloud names."""
    name = f"{service.namespace}-{service.name}" + (f"-{port.name}" if port.name else "")
    name = re.sub(r"[^a-zA-Z0-9-]", "-", name)
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:NAME_HASH_LENGTH]
    return f"{name[: limit - NAME_HASH_LENGTH - 1].rstrip('-')}-{digest}"


def parse_range(text: str) -> NodePortRange:
    try:
        return NodePortRange.parse(text)
    except ValueError as exc:
        raise CloudError(str(exc), exit_code=2) from None


def _ref(service: Service) -> str:
    return f"Service {service.namespace}/{service.name}"


def _names(service: Service) -> str:
    return ", ".join(p.name or str(p.port) for p in service.ports)
