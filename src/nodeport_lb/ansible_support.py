"""Glue shared by the Ansible modules in modules/: argument specs and backend selection.

The modules stay thin (as kubernetes.core's do): they parse options with AnsibleModule and
call into this package, where the logic lives and is tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nodeport_lb.defaults import DEFAULT_NODE_PORT_RANGE
from nodeport_lb.model import NodePortRange
from nodeport_lb.services import ServiceBackend
from nodeport_lb.services.store_backend import StoreBackend

STORE_ARGUMENT_SPEC: dict[str, Any] = {
    "store": {
        "type": "dict",
        "required": True,
        "options": {
            "path": {"type": "path"},
            "kubeconfig": {"type": "raw"},
            "context": {"type": "str"},
            "host": {"type": "str"},
            "api_key": {"type": "str", "no_log": True},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "validate_certs": {"type": "bool"},
            "ca_cert": {"type": "path"},
            "client_cert": {"type": "path"},
            "client_key": {"type": "path"},
        },
    },
    "service_node_port_range": {"type": "str", "default": DEFAULT_NODE_PORT_RANGE},
}


def backend_from_params(params: Mapping[str, Any]) -> ServiceBackend:
    """The manifest store when ``store.path`` is given, else the Kubernetes API."""
    node_port_range = NodePortRange.parse(params["service_node_port_range"])
    store = params["store"] or {}
    if store.get("path"):
        return StoreBackend(store["path"], node_port_range)
    from nodeport_lb.services.kube_backend import KubernetesBackend  # needs the kubernetes client

    settings = {k: v for k, v in store.items() if k != "path" and v is not None}
    return KubernetesBackend.from_settings(**settings)
