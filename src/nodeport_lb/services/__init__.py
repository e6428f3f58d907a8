"""Applying Services to a control plane: the manifest store or a Kubernetes API server.

``prepare_service`` turns module options or a raw manifest into a defaulted, validated manifest
(raising ``InvalidService`` with API-server messages); a backend then applies it:
``StoreBackend`` (a manifest directory, allocating node ports like the API server) or
``KubernetesBackend`` (server-side apply; the API server allocates). Both return an
``ApplyResult`` the Ansible modules report as they are.
"""

from nodeport_lb.services.applied import AppliedService
from nodeport_lb.services.base import (
    ApplyResult,
    BackendError,
    BackendUnavailable,
    InvalidService,
    ServiceBackend,
    prepare_service,
    service_facts,
)

__all__ = [
    "AppliedService",
    "ApplyResult",
    "BackendError",
    "BackendUnavailable",
    "InvalidService",
    "ServiceBackend",
    "prepare_service",
    "service_facts",
]
