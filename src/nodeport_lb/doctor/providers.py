"""What each cloud's controller makes its load balancer check, read from a Service's annotations.

For a LoadBalancer Service with externalTrafficPolicy: Local the check has to be HTTP on the
healthCheckNodePort (hcnp): kube-proxy answers 200 there only on nodes with a ready local pod,
503 elsewhere and while the node drains. A TCP check on the hcnp always passes (the port is open
on every node); a check on the traffic nodePort misses the drain and kube-proxy's own health.

Each function below restates, in our words, what the provider's cloud controller does; the
upstream file it was read from is named beside it. Defaults are the controller's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nodeport_lb.model import Service


def detection_seconds(interval: float | None, fall: int | None) -> float | None:
    """How long a node that stopped answering 200 keeps receiving new connections: ``fall``
    failed checks ``interval`` seconds apart (None when either is unknown)."""
    return None if interval is None or fall is None else interval * fall


@dataclass(frozen=True)
class HealthCheckPlan:
    """The check one cloud load balancer will run against the nodes (for one port or all)."""

    provider: str
    source: str  # the upstream file this behaviour comes from
    protocol: str  # "http" | "https" | "tcp" | "none"
    on_hcnp: bool  # True: the check goes to the healthCheckNodePort
    target: str  # what it checks, in words: "the healthCheckNodePort 31897", "nodePort 31001"
    interval: float | None  # seconds between checks (None: unknown, left to the cloud API)
    fall: int | None  # failed checks before a node is taken out
    fix: str  # how to make it HTTP on the hcnp, in words
    set_annotations: Mapping[str, str] = field(default_factory=dict)
    remove_annotations: Sequence[str] = ()
    can_target_hcnp: bool = True  # False: this provider's check cannot be pointed at the hcnp
    where: str = ""  # "port 80" when the plan is for one Service port only
    invalid: Sequence[str] = ()  # annotation values the controller refuses

    @property
    def detection_seconds(self) -> float | None:
        return detection_seconds(self.interval, self.fall)


@dataclass(frozen=True)
class Provider:
    name: str
    annotation_prefixes: tuple[str, ...]
    provider_id_prefixes: tuple[str, ...]  # Node spec.providerID schemes
    plans: Callable[[Service], list[HealthCheckPlan]]


def hcnp_text(service: Service) -> str:
    hcnp = service.health_check_node_port
    return f"the healthCheckNodePort {hcnp}" if hcnp else "the healthCheckNodePort"


def _app_protocol(service: Service, port: int) -> str:
    for raw in (service.manifest.get("spec") or {}).get("ports") or []:
        if isinstance(raw, Mapping) and raw.get("port") == port:
            return str(raw.get("appProtocol") or "")
    return ""


def _first_tcp_node_port(service: Service) -> str:
    for port in service.ports:
        if port.protocol == "TCP":
            return (
                f"nodePort {port.node_port}" if port.node_port else f"the nodePort of {port.port}"
            )
    return "a nodePort"


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration ("10s", "1m30s", "500ms"); None when it is not one."""
    text = text.strip()
    if text == "0":
        return 0.0
    if not text or _DURATION_PART.sub("", text):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


class _Reader:
    """Annotation values with their defaults; values the controller would refuse are noted."""

    def __init__(self, annotations: Mapping[str, str]) -> None:
        self.annotations = annotations
        self.invalid: list[str] = []

    def text(self, key: str, default: str = "") -> str:
        return str(self.annotations.get(key, default)).strip()

    def integer(self, key: str, default: int | None) -> int | None:
        if key not in self.annotations:
            return default
        value = self.text(key)
        if re.fullmatch(r"-?\d+", value):
            return int(value)
        self.invalid.append(f"{key}: {value!r} is not a whole number")
        return default

    def duration(self, key: str, default: float | None) -> float | None:
        if key not in self.annotations:
            return default
        seconds = go_duration(self.text(key))
        if seconds is None:
            self.invalid.append(f"{key}: {self.text(key)!r} is not a duration (like 10s)")
            return default
        return seconds


# --- Exoscale: exoscale/exoscale-cloud-controller-manager, exoscale/loadbalancer.go
# (buildLoadBalancerFromAnnotations). The check goes to the hcnp for eTP Local unless the port
# annotation overrides it, but its mode defaults to TCP (interval 10s, retries 1).
EXOSCALE = "service.beta.kubernetes.io/exoscale-loadbalancer-"


def exoscale_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    mode = read.text(f"{EXOSCALE}service-healthcheck-mode", "tcp").lower()
    port = read.text(f"{EXOSCALE}service-healthcheck-port")
    on_hcnp = not port or port == str(service.health_check_node_port)
    interval = read.duration(f"{EXOSCALE}service-healthcheck-interval", 10)
    retries = read.integer(f"{EXOSCALE}service-healthcheck-retries", 1)
    return [
        HealthCheckPlan(
            provider="Exoscale",
            source="exoscale/exoscale-cloud-controller-manager exoscale/loadbalancer.go",
            protocol=mode,
            on_hcnp=on_hcnp,
            target=hcnp_text(service) if on_hcnp else f"port {port}",
            interval=interval,
            fall=retries,
            fix=f"annotate {EXOSCALE}service-healthcheck-mode: http"
            + ("" if on_hcnp else f" and remove {EXOSCALE}service-healthcheck-port"),
            set_annotations={
                f"{EXOSCALE}service-healthcheck-mode": "http",
                f"{EXOSCALE}service-healthcheck-uri": read.text(
                    f"{EXOSCALE}service-healthcheck-uri", "/healthz"
                )
                or "/healthz",
            },
            remove_annotations=() if on_hcnp else (f"{EXOSCALE}service-healthcheck-port",),
            invalid=read.invalid,
        )
    ]


# --- AWS: kubernetes/cloud-provider-aws, pkg/providers/v1/aws.go
# (buildNLBHealthCheckConfiguration, EnsureLoadBalancer) and aws_loadbalancer.go
# (ensureLoadBalancerHealthCheck, the ELB defaults). For eTP Local both NLB and classic ELB
# check HTTP /healthz on the hcnp; the protocol and port annotations override that.
AWS = "service.beta.kubernetes.io/aws-load-balancer-"


def aws_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    nlb = read.text(f"{AWS}type").lower() in ("nlb", "external", "nlb-ip")
    protocol = read.text(f"{AWS}healthcheck-protocol", "HTTP").lower()
    port = read.text(f"{AWS}healthcheck-port")
    on_hcnp = not port or port == str(service.health_check_node_port)
    if port == "traffic-port":
        target = f"the traffic port ({_first_tcp_node_port(service)})"
    else:
        target = hcnp_text(service) if on_hcnp else f"port {port}"
    to_remove = [
        k
        for k in (f"{AWS}healthcheck-protocol", f"{AWS}healthcheck-port")
        if k in service.annotations
    ]
    return [
        HealthCheckPlan(
            provider="AWS " + ("NLB" if nlb else "ELB"),
            source="kubernetes/cloud-provider-aws pkg/providers/v1/aws.go, aws_loadbalancer.go",
            protocol=protocol,
            on_hcnp=on_hcnp,
            target=target,
            interval=read.integer(f"{AWS}healthcheck-interval", 10),
            # NLB: 2 failures for eTP Local; classic ELB: its unhealthy-threshold default, 6
            fall=read.integer(f"{AWS}healthcheck-unhealthy-threshold", 2 if nlb else 6),
            fix="remove "
            + " and ".join(to_remove)
            + " (the controller then checks HTTP /healthz on the healthCheckNodePort)",
            remove_annotations=tuple(to_remove),
            invalid=read.invalid,
        )
    ]


# --- DigitalOcean: digitalocean/digitalocean-cloud-controller-manager,
# cloud-controller-manager/do/loadbalancers.go (buildHealthCheck, healthCheckPort,
# healthCheckProtocol) and do/lb_annotations.go. HTTP on the hcnp by default; with the
# override-health-check annotation the check moves to a Service port's nodePort, TCP unless a
# path is given. Interval 3s, unhealthy threshold 3.
DIGITALOCEAN = "service.beta.kubernetes.io/do-loadbalancer-"


def digitalocean_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    interval = read.integer(f"{DIGITALOCEAN}healthcheck-check-interval-seconds", 3)
    fall = read.integer(f"{DIGITALOCEAN}healthcheck-unhealthy-threshold", 3)
    common: dict[str, Any] = {
        "provider": "DigitalOcean",
        "source": "digitalocean/digitalocean-cloud-controller-manager "
        "cloud-controller-manager/do/loadbalancers.go",
        "interval": interval,
        "fall": fall,
    }
    if f"{DIGITALOCEAN}override-health-check" not in service.annotations:
        return [
            HealthCheckPlan(
                protocol="http",
                on_hcnp=True,
                target=hcnp_text(service),
                fix="",
                invalid=read.invalid,
                **common,
            )
        ]
    path = read.text(f"{DIGITALOCEAN}healthcheck-path")
    protocol = read.text(f"{DIGITALOCEAN}healthcheck-protocol").lower() or (
        "http" if path else "tcp"
    )
    named = read.text(f"{DIGITALOCEAN}healthcheck-port")
    target = _first_tcp_node_port(service)
    for port in service.ports:
        if named and str(port.port) == named:
            target = f"nodePort {port.node_port}" if port.node_port else f"the nodePort of {named}"
    return [
        HealthCheckPlan(
            protocol=protocol,
            on_hcnp=False,
            target=target,
            fix=f"remove {DIGITALOCEAN}override-health-check (the controller then checks HTTP "
            "on the healthCheckNodePort)",
            remove_annotations=(f"{DIGITALOCEAN}override-health-check",),
            invalid=read.invalid,
            **common,
        )
    ]


# --- Hetzner: hetznercloud/hcloud-cloud-controller-manager, internal/hcops/load_balancer.go
# (extractHealthCheck) and internal/annotation/load_balancer.go. The controller never looks at
# the hcnp: the check is the service protocol (TCP) on the destination nodePort unless the
# health-check annotations say otherwise; interval and retries are left to the cloud API
# unless annotated.
HETZNER = "load-balancer.hetzner.cloud/"


def hetzner_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    protocol = read.text(f"{HETZNER}health-check-protocol", "tcp").lower()
    port = read.text(f"{HETZNER}health-check-port")
    hcnp = service.health_check_node_port
    on_hcnp = bool(port) and port == str(hcnp)
    hcnp_value = str(hcnp) if hcnp else "<healthCheckNodePort>"
    return [
        HealthCheckPlan(
            provider="Hetzner",
            source="hetznercloud/hcloud-cloud-controller-manager internal/hcops/load_balancer.go",
            protocol=protocol,
            on_hcnp=on_hcnp,
            target=hcnp_text(service)
            if on_hcnp
            else (f"port {port}" if port else _first_tcp_node_port(service)),
            interval=read.duration(f"{HETZNER}health-check-interval", None),
            fall=read.integer(f"{HETZNER}health-check-retries", None),
            fix=f"annotate {HETZNER}health-check-protocol: http, {HETZNER}health-check-port: "
            f"{hcnp_value} and {HETZNER}health-check-http-path: /healthz (set "
            "spec.healthCheckNodePort explicitly so the port stays what the annotation says)",
            set_annotations={
                f"{HETZNER}health-check-protocol": "http",
                f"{HETZNER}health-check-port": hcnp_value,
                f"{HETZNER}health-check-http-path": "/healthz",
            },
            invalid=read.invalid,
        )
    ]


# --- Linode: linode/linode-cloud-controller-manager, cloud/linode/loadbalancers.go
# (buildNodeBalancerConfig, getHealthCheckType) and cloud/annotations/annotations.go. A
# NodeBalancer checks each node's traffic port (it cannot be pointed at the hcnp): "connection"
# by default, "none" turns active checks off. Interval 5s, 2 attempts.
LINODE = "service.beta.kubernetes.io/linode-loadbalancer-"


def linode_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    check = read.text(f"{LINODE}check-type", "connection").lower()
    protocol = {"connection": "tcp", "http": "http", "http_body": "http"}.get(check, check)
    return [
        HealthCheckPlan(
            provider="Linode",
            source="linode/linode-cloud-controller-manager cloud/linode/loadbalancers.go",
            protocol=protocol,
            on_hcnp=False,
            target=_first_tcp_node_port(service),
            interval=read.integer(f"{LINODE}check-interval", 5),
            fall=read.integer(f"{LINODE}check-attempts", 2),
            fix=f"annotate {LINODE}check-type: connection (or http with "
            f"{LINODE}check-path): a node without a local pod then fails the check",
            set_annotations={f"{LINODE}check-type": "connection"},
            can_target_hcnp=False,
            invalid=read.invalid,
        )
    ]


# --- Oracle Cloud: oracle/oci-cloud-controller-manager,
# pkg/cloudprovider/providers/oci/load_balancer_spec.go (getHealthChecker,
# getHealthCheckInterval, getHealthCheckRetries). Always HTTP on the hcnp for eTP Local; only the
# timing is annotated (milliseconds; 10000 ms and 3 retries by default).
OCI_LB = "service.beta.kubernetes.io/oci-load-balancer-"
OCI_NLB = "oci-network-load-balancer.oraclecloud.com/"
OCI_TYPE = "oci.oraclecloud.com/load-balancer-type"


def oci_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    prefix = OCI_NLB if read.text(OCI_TYPE).lower() == "nlb" else OCI_LB
    interval_ms = read.integer(f"{prefix}health-check-interval", 10000)
    return [
        HealthCheckPlan(
            provider="Oracle Cloud",
            source="oracle/oci-cloud-controller-manager "
            "pkg/cloudprovider/providers/oci/load_balancer_spec.go",
            protocol="http",
            on_hcnp=True,
            target=hcnp_text(service),
            interval=None if interval_ms is None else interval_ms / 1000,
            fall=read.integer(f"{prefix}health-check-retries", 3),
            fix="",
            invalid=read.invalid,
        )
    ]


# --- Azure: kubernetes-sigs/cloud-provider-azure, pkg/provider/azure_loadbalancer.go (the
# hcnp probe for eTP Local takes precedence) and azure_loadbalancer_healthprobe.go
# (buildHealthProbeRulesForPort). A port keeps the HTTP hcnp probe unless its
# port_<port>_health-probe_port annotation gives it a probe of its own (protocol from
# port_<port>_health-probe_protocol, the port's appProtocol, the Service-wide protocol
# annotation, else TCP) or port_<port>_no_probe_rule drops its probe. Interval 5s, 2 probes.
AZURE = "service.beta.kubernetes.io/azure-load-balancer-"
AZURE_PORT = "service.beta.kubernetes.io/port_{port}_"


def azure_plans(service: Service) -> list[HealthCheckPlan]:
    read = _Reader(service.annotations)
    plans = []
    source = "kubernetes-sigs/cloud-provider-azure pkg/provider/azure_loadbalancer_healthprobe.go"
    for port in service.ports:
        if port.protocol != "TCP":
            continue
        per_port = AZURE_PORT.format(port=port.port)
        interval = read.integer(
            f"{per_port}health-probe_interval",
            read.integer(f"{AZURE}health-probe-interval", 5),
        )
        fall = read.integer(
            f"{per_port}health-probe_num-of-probe",
            read.integer(f"{AZURE}health-probe-num-of-probe", 2),
        )
        common: dict[str, Any] = {
            "provider": "Azure",
            "source": source,
            "interval": interval,
            "fall": fall,
            "where": f"port {port.port}",
        }
        if read.text(f"{per_port}no_probe_rule").lower() == "true":
            plans.append(
                HealthCheckPlan(
                    protocol="none",
                    on_hcnp=False,
                    target="nothing",
                    fix=f"remove {per_port}no_probe_rule",
                    remove_annotations=(f"{per_port}no_probe_rule",),
                    invalid=read.invalid,
                    **common,
                )
            )
            continue
        probe_port = read.text(f"{per_port}health-probe_port")
        if not probe_port:
            plans.append(
                HealthCheckPlan(
                    protocol="http", on_hcnp=True, target=hcnp_text(service), fix="", **common
                )
            )
            continue
        protocol = (
            read.text(f"{per_port}health-probe_protocol")
            or _app_protocol(service, port.port)
            or read.text(f"{AZURE}health-probe-protocol")
            or "tcp"
        ).lower()
        checked = probe_port
        for other in service.ports:
            if probe_port in (str(other.port), other.name) and other.node_port:
                checked = str(other.node_port)
        on_hcnp = checked == str(service.health_check_node_port)
        plans.append(
            HealthCheckPlan(
                protocol=protocol,
                on_hcnp=on_hcnp,
                target=hcnp_text(service) if on_hcnp else f"port {checked}",
                fix=f"remove {per_port}health-probe_port (the controller then probes HTTP "
                "on the healthCheckNodePort)",
                remove_annotations=(f"{per_port}health-probe_port",),
                invalid=read.invalid,
                **common,
            )
        )
    return plans


PROVIDERS: tuple[Provider, ...] = (
    Provider("Exoscale", (EXOSCALE,), ("exoscale://",), exoscale_plans),
    Provider("AWS", (AWS,), ("aws://",), aws_plans),
    Provider(
        "DigitalOcean",
        (DIGITALOCEAN, "kubernetes.digitalocean.com/"),
        ("digitalocean://",),
        digitalocean_plans,
    ),
    Provider("Hetzner", (HETZNER,), ("hcloud://",), hetzner_plans),
    Provider("Linode", (LINODE,), ("linode://",), linode_plans),
    Provider(
        "Oracle Cloud", (OCI_LB, OCI_NLB, "oci.oraclecloud.com/"), ("oci://", "ocid1."), oci_plans
    ),
    Provider("Azure", (AZURE, "service.beta.kubernetes.io/port_"), ("azure://",), azure_plans),
)

# GKE's pods-per-node weighting (kubernetes/ingress-gce pkg/annotations/service.go,
# WeightedL4AnnotationKey): the load balancer then weighs nodes by their local pods.
GKE_WEIGHTED = "networking.gke.io/weighted-load-balancing"


def cloud_weights_by_pods(service: Service) -> bool:
    return service.annotations.get(GKE_WEIGHTED) == "pods-per-node"


def provider_for(service: Service, nodes: Sequence[Mapping[str, Any]]) -> Provider | None:
    """The cloud controller that builds this Service's load balancer: the one whose annotations
    it carries, else the one whose Nodes these are; None with a loadBalancerClass (another
    controller's Service) or when neither says."""
    if (service.manifest.get("spec") or {}).get("loadBalancerClass"):
        return None
    for provider in PROVIDERS:
        if any(k.startswith(provider.annotation_prefixes) for k in service.annotations):
            return provider
    ids = {str((node.get("spec") or {}).get("providerID") or "") for node in nodes}
    for provider in PROVIDERS:
        if ids and all(i.startswith(provider.provider_id_prefixes) for i in ids):
            return provider
    return None
