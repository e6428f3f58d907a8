"""A Service as the control plane has it, with nodeport-lb's own settings for it: what the
Services role publishes (``nodeport_lb_applied_services``), what the load balancers are planned
from, and what verify expects.

Across the Ansible boundary it travels as a fact in the module's own vocabulary: the
Service's options (the model's option tables, ports included, with the allocated nodePorts and
healthCheckNodePort filled in), the entry's ``load_balancer`` settings and ``to_be_allocated``,
plus ``node_ports`` for playbooks to read. ``AppliedService.from_fact`` is the one way back
to a ``model.Service``: through the same options, defaults and validation as the module, so a
fact edited by hand cannot put anything into a load balancer's config that a Service could not
hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nodeport_lb.model import (
    PORT_OPTIONS,
    SERVICE_OPTION_TABLE,
    NodePortRange,
    Service,
    options_from_manifest,
)
from nodeport_lb.services.base import InvalidService, prepare_service

# Read back, a fact's ports are only checked to be ports: the range they were allocated from
# was the cluster's, checked when the Service was applied.
_ANY_PORT = NodePortRange(1, 65535)


@dataclass(frozen=True)
class AppliedService:
    service: Service
    load_balancer: Mapping[str, Any] | None = None  # the entry's own load_balancer: settings
    # In check mode on a cluster, the fields the API server has yet to allocate: their ports
    # are not known, so the load-balancer plan leaves the Service out for that run.
    to_be_allocated: tuple[str, ...] = ()

    @classmethod
    def from_result(
        cls,
        item: Mapping[str, Any],
        manifest: Mapping[str, Any],
        to_be_allocated: Sequence[str] = (),
    ) -> AppliedService:
        """From a ``nodeport_lb_services`` entry and the manifest the module applied for it."""
        return cls(
            Service.from_manifest(manifest), item.get("load_balancer"), tuple(to_be_allocated)
        )

    def to_fact(self, item: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The published form; ``item``'s other keys (the entry as given) are kept beside."""
        service = self.service
        return {
            **(item or {}),
            **options_from_manifest(service.manifest),
            "node_ports": service.node_ports,
            "health_check_node_port": service.health_check_node_port or None,
            "load_balancer": self.load_balancer,
            "to_be_allocated": list(self.to_be_allocated),
        }

    @classmethod
    def from_fact(cls, fact: Any) -> AppliedService:
        """Read a published entry back; ``InvalidService`` says what is wrong with it."""
        if not isinstance(fact, Mapping):
            raise InvalidService([f"expected a Service dict, got {fact!r}"])
        options = {o.name: fact[o.name] for o in SERVICE_OPTION_TABLE if o.name in fact}
        known = {o.name for o in PORT_OPTIONS}
        for index, port in enumerate(options.get("ports") or []):
            unknown = sorted(set(port) - known) if isinstance(port, Mapping) else []
            if unknown:
                raise InvalidService(
                    [
                        f"ports[{index}]: unknown field(s) {', '.join(map(str, unknown))}; "
                        f"known: {', '.join(sorted(known))}"
                    ],
                    str(fact.get("name") or ""),
                )
        manifest = prepare_service(_ANY_PORT, options=options, ip_families=None)
        pending = fact.get("to_be_allocated") or ()
        if isinstance(pending, str) or not isinstance(pending, Sequence):
            raise InvalidService([f"to_be_allocated: expected a list, got {pending!r}"])
        return cls(
            Service.from_manifest(manifest), fact.get("load_balancer"), tuple(map(str, pending))
        )
