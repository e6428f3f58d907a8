"""`nodeport-lb cloud check`: does the cloud load balancer still match its Service?

A Service recreated (by Helm, say) gets a new healthCheckNodePort and possibly new nodePorts;
the cloud load balancer keeps checking the old port, every node fails the check, and the
Service is down until Terraform runs again. This compares what the Terraform state holds
(``terraform show -json``: the resources as last applied) with the Service as the store or the
API has it now, and names each difference on one line.

The state is read resource by resource, in each provider's own attribute shape
(``exoscale_nlb_service``; ``aws_lb_listener`` joined to its ``aws_lb_target_group``). The
offline stand-in modules record the same shapes in ``terraform_data`` resources that name the
resource they stand in for (``input.stands_in_for``), so one reader serves both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nodeport_lb.cloud import CloudError
from nodeport_lb.cloud.render import select_port
from nodeport_lb.defaults import DEFAULT_NODE_PORT_RANGE, PROXY_HEALTHZ_PORT
from nodeport_lb.model import Service, ServicePort

STAND_IN = "terraform_data"
HTTP_MODES = ("http", "https")


@dataclass(frozen=True)
class HealthCheck:
    mode: str  # lower case: http, https, tcp
    port: int


@dataclass(frozen=True)
class Listener:
    """One port of a cloud load balancer, as the state holds it."""

    address: str  # the resource's address in the state, for messages
    protocol: str  # upper case
    port: int  # what clients connect to: the Service port
    target_port: int  # what the nodes get: must be the nodePort
    healthcheck: HealthCheck

    def __str__(self) -> str:
        return f"{self.protocol} {self.port} ({self.address})"


def resources(show: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """(type, address, attributes) of every managed resource in ``terraform show -json``."""

    def walk(module: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        for resource in module.get("resources") or []:
            if resource.get("mode") != "managed":
                continue
            values = resource.get("values") or {}
            kind = resource.get("type", "")
            recorded = values.get("output") if kind == STAND_IN else None
            if isinstance(recorded, Mapping) and recorded.get("stands_in_for"):
                kind = recorded["stands_in_for"]
                # the stand-in's own id plays the real resource's id and ARN
                values = {"id": values.get("id"), "arn": values.get("id"), **recorded["values"]}
            yield kind, resource.get("address", kind), values
        for child in module.get("child_modules") or []:
            yield from walk(child)

    yield from walk((show.get("values") or {}).get("root_module") or {})


def listeners(show: Mapping[str, Any]) -> list[Listener]:
    try:
        return list(_listeners(show))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise CloudError(f"the Terraform state has an unexpected shape ({exc!r})", 2) from exc


def _listeners(show: Mapping[str, Any]) -> Iterator[Listener]:
    found = list(resources(show))
    target_groups = {
        values["arn"]: values for kind, _, values in found if kind == "aws_lb_target_group"
    }
    for kind, address, values in found:
        if kind == "exoscale_nlb_service":
            check = values["healthcheck"][0]
            yield Listener(
                address=address,
                protocol=str(values["protocol"]).upper(),
                port=int(values["port"]),
                target_port=int(values["target_port"]),
                healthcheck=HealthCheck(str(check["mode"]).lower(), int(check["port"])),
            )
        elif kind == "aws_lb_listener":
            forward = next(a for a in values["default_action"] if a["type"] == "forward")
            group = target_groups[forward["target_group_arn"]]
            check = group["health_check"][0]
            # AWS's "traffic-port" means the target port itself
            port = group["port"] if check["port"] == "traffic-port" else check["port"]
            yield Listener(
                address=address,
                protocol=str(values["protocol"]).upper(),
                port=int(values["port"]),
                target_port=int(group["port"]),
                healthcheck=HealthCheck(str(check["protocol"]).lower(), int(port)),
            )


def drift(
    ref: str,
    service: Service | None,
    found: list[Listener],
    port_name: str | None,
    where: str,
) -> list[str]:
    """One line per difference between the load balancer (``found``) and the Service now.

    ``service`` None: the Service is gone. ``where`` names the deployment for the "missing"
    line (its work directory).
    """
    if service is None:
        return [
            f"{ref} {listener}: Service {ref} no longer exists, the load balancer still "
            "forwards this port"
            for listener in found
        ]
    expected = select_port(service, port_name)
    lines: list[str] = []
    served = False
    for listener in found:
        port = _service_port(service, listener)
        if port is None:
            lines.append(
                f"{ref} {listener}: extra port: the Service no longer has {listener.protocol} "
                f"port {listener.port} (its ports: {_ports(service)})"
            )
            continue
        served = served or port == expected
        lines += _port_drift(ref, service, port, listener)
    if not served:
        lines.append(
            f"{ref} {expected.protocol} {expected.port}: missing port: no load balancer in "
            f"{where} listens on Service port {expected.key} "
            f"(nodePort {expected.node_port or 'none'})"
        )
    return lines


def _port_drift(ref: str, service: Service, port: ServicePort, listener: Listener) -> list[str]:
    lines = []
    if listener.target_port != port.node_port:
        lines.append(
            f"{ref} {listener}: target port {listener.target_port} is not the nodePort of "
            f"Service port {port.key}, now {port.node_port}: traffic goes to a port the nodes "
            "no longer serve for this Service"
        )
    check = listener.healthcheck
    if service.is_local:
        hcnp = service.health_check_node_port
        if check.mode not in HTTP_MODES:
            lines.append(
                f"{ref} {listener}: health check is {check.mode.upper()} on {check.port}, not "
                f"HTTP on the healthCheckNodePort {hcnp}: for externalTrafficPolicy: Local a "
                "TCP check always passes, so nodes without a pod keep getting traffic"
            )
        elif check.port != hcnp:
            lines.append(
                f"{ref} {listener}: health check is HTTP on port {check.port}, not on the "
                f"Service's current healthCheckNodePort {hcnp}: the nodes are judged by a port "
                "that no longer reports this Service's pods (after a recreate, every node "
                "fails it and the Service is down)"
            )
    elif check.port != PROXY_HEALTHZ_PORT:
        lines.append(
            f"{ref} {listener}: health check on port {check.port}, not the node proxy's "
            f"/healthz port {PROXY_HEALTHZ_PORT} that an externalTrafficPolicy: Cluster "
            "Service is checked on"
        )
    return lines


def _service_port(service: Service, listener: Listener) -> ServicePort | None:
    for port in service.ports:
        if port.port == listener.port and port.protocol.upper() == listener.protocol:
            return port
    return None


def _ports(service: Service) -> str:
    return ", ".join(f"{p.key} {p.protocol} {p.port}" for p in service.ports) or "none"


def check_inventory_host(host_vars: Mapping[str, Any]) -> list[str]:
    """Drift lines for a ``cloud_lb`` host written by ``cloud apply --inventory-out``.

    Its variables name the work directory and the Service, ``nodeport_lb_store`` (``{path}``
    or ``{kubeconfig}``, as the Services role reads it) where the Service is; an error that
    stops the check is one line too (the verification reports it like a drift).
    """
    # Imported here: the verification suite imports this module for every inventory.
    from pathlib import Path

    from nodeport_lb.cloud import driver
    from nodeport_lb.cloud.engine import find_engine
    from nodeport_lb.cloud.render import parse_range
    from nodeport_lb.cloud.service_source import ServiceNotFound, load_service

    ref = str(host_vars.get("nodeport_lb_service", "?"))
    try:
        workdir = Path(host_vars["nodeport_lb_cloud_workdir"])
        store = host_vars.get("nodeport_lb_store") or {}
        manifests, kubeconfig = store.get("path"), store.get("kubeconfig")
        if not (manifests or kubeconfig):
            raise CloudError("nodeport_lb_store has neither path nor kubeconfig to read it from")
        node_port_range = parse_range(
            str(host_vars.get("nodeport_lb_cloud_node_port_range") or DEFAULT_NODE_PORT_RANGE)
        )
        try:
            service: Service | None = load_service(
                ref,
                Path(manifests) if manifests else None,
                Path(kubeconfig) if kubeconfig else None,
                node_port_range,
            )
        except ServiceNotFound:
            service = None
        deployment = driver.Deployment(
            module_dir=workdir, workdir=workdir, state=workdir / "terraform.tfstate", variables=None
        )
        show = driver.state(find_engine(), deployment)
        found = listeners(show) if show else []
        return drift(
            ref, service, found, host_vars.get("nodeport_lb_cloud_port_name"), str(workdir)
        )
    except KeyError as exc:
        return [
            f"{ref}: cannot check the cloud load balancer: no {exc.args[0]} in its host variables"
        ]
    except CloudError as exc:
        return [f"{ref}: cannot check the cloud load balancer: {' '.join(str(exc).split())}"]
