"""Plan the load balancers in front of the Services: HAProxy frontends/backends (``haproxy``)
and keepalived VRRP instances (``keepalived``) from settings read and checked in
``settings``, computed (and tested) here so the templates only print the result.

Every user-given value is validated; a bad one raises ``PlanError`` whose message says which
variable is wrong and why, before any file is rendered.
"""

from __future__ import annotations

from nodeport_lb.loadbalancer.haproxy import (
    TPROXY,
    TRANSPARENT_SOURCE,
    HAProxyPlan,
    Listener,
    Server,
    plan_haproxy,
)
from nodeport_lb.loadbalancer.keepalived import (
    KeepalivedPlan,
    VrrpInstance,
    fact_key,
    interface_for,
    plan_keepalived,
)
from nodeport_lb.loadbalancer.settings import (
    BALANCE_ALGORITHMS,
    CLIENT_ADDRESS_MODES,
    HAProxySettings,
    Host,
    KeepalivedSettings,
    LoadBalancerOptions,
    PlanError,
    hosts_from_inventory,
    validate_vips,
)

__all__ = [
    "BALANCE_ALGORITHMS",
    "CLIENT_ADDRESS_MODES",
    "TPROXY",
    "TRANSPARENT_SOURCE",
    "HAProxyPlan",
    "HAProxySettings",
    "Host",
    "KeepalivedPlan",
    "KeepalivedSettings",
    "Listener",
    "LoadBalancerOptions",
    "PlanError",
    "Server",
    "VrrpInstance",
    "fact_key",
    "hosts_from_inventory",
    "interface_for",
    "plan_haproxy",
    "plan_keepalived",
    "validate_vips",
]
