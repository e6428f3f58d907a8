"""The health check a load balancer in front of a Service uses, decided once for every
consumer (HAProxy backends, the Exoscale and AWS load balancers).

It follows what cloud controllers do for ``externalTrafficPolicy``:

- Local: HTTP ``GET /`` on the Service's healthCheckNodePort, healthy only on ``200``:
  kube-proxy (or the node agent) answers 503 where the node has no ready local pod. A TCP
  check is refused: the healthCheckNodePort is open on every node, so it would always pass.
- Cluster: every node forwards anywhere, so a node is fit when its proxy is healthy: HTTP
  ``GET /healthz`` on the node proxy's healthz port, or a plain TCP check when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from nodeport_lb.defaults import PROXY_HEALTHZ_PATH, PROXY_HEALTHZ_PORT
from nodeport_lb.model import Service

HTTP_PROTOCOLS = ("http", "https")
LOCAL_CHECK_PATH = "/"
HEALTHY_STATUS = 200


class HealthCheckError(ValueError):
    """The Service cannot get a health check that tells the nodes apart (message says why)."""


@dataclass(frozen=True)
class HealthCheck:
    protocol: str  # http, https or tcp
    # None: a TCP check of a Cluster Service on the port each consumer connects to by default
    port: int | None
    path: str = ""  # the HTTP request's path; "" for tcp
    on_hcnp: bool = False  # port is the Service's healthCheckNodePort

    @property
    def is_http(self) -> bool:
        return self.protocol in HTTP_PROTOCOLS


def tcp_on_local_message(service_ref: str, hcnp: int | str, fix: str) -> str:
    return (
        f"refusing a tcp health check for {service_ref}: a TCP health check cannot be used for "
        f"externalTrafficPolicy: Local. Its healthCheckNodePort ({hcnp}) is open on every node, "
        "whether or not the node runs a pod of the Service, so a TCP check always passes: the "
        "load balancer would keep sending traffic to nodes that drop it. Only the HTTP status "
        "says which nodes have local endpoints (kube-proxy and the node agent answer 200 with "
        "localEndpoints >= 1, 503 with none). A TCP check is what Exoscale's cloud controller "
        f"does by default. Use {fix}."
    )


def service_health_check(
    service: Service,
    *,
    protocol: str,
    fix: str,
    healthz_port: int = PROXY_HEALTHZ_PORT,
) -> HealthCheck:
    """The check for a Service; ``protocol`` is the one asked for, ``fix`` the setting that
    asks for HTTP in the caller's words (``--healthcheck-mode http``)."""
    service_ref = f"Service {service.key}"
    hcnp = service.health_check_node_port
    if service.is_local:
        if protocol not in HTTP_PROTOCOLS:
            raise HealthCheckError(tcp_on_local_message(service_ref, hcnp or "hcnp", fix))
        if not hcnp:
            kind = f" (it is {service.type})" if service.type != "LoadBalancer" else ""
            raise HealthCheckError(
                f"{service_ref} has externalTrafficPolicy: Local but no healthCheckNodePort, "
                "so nothing tells which nodes have a local pod (the API allocates one only for "
                f"type LoadBalancer): make the Service type LoadBalancer{kind}, or use "
                "externalTrafficPolicy: Cluster."
            )
        return HealthCheck(protocol, hcnp, LOCAL_CHECK_PATH, on_hcnp=True)
    if protocol in HTTP_PROTOCOLS:
        return HealthCheck(protocol, healthz_port, PROXY_HEALTHZ_PATH)
    return HealthCheck(protocol, None)
