"""What every Service backend shares: preparation, the result shape, the facts reported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nodeport_lb.model import (
    NodePortRange,
    Service,
    apply_defaults,
    is_service_manifest,
    manifest_from_options,
)
from nodeport_lb.store import dump_yaml
from nodeport_lb.validation import DEFAULT_SERVICE_IP_FAMILIES, FieldError, validate_service

# The only fields nodeport-lb owns; everything else on a live object (status, uid,
# resourceVersion, clusterIP, ...) belongs to the control plane and is not compared.
OWNED_METADATA = ("name", "namespace", "labels", "annotations")


class InvalidService(Exception):
    """The Service would be refused by the API server; ``errors`` are its messages."""

    def __init__(self, errors: list[FieldError] | list[str], name: str = "") -> None:
        self.errors = [str(e) for e in errors]
        self.name = name
        prefix = f'Service "{name}" is invalid: ' if name else "Service is invalid: "
        super().__init__(prefix + "; ".join(self.errors))


class BackendError(Exception):
    """The control plane refused or failed a request; the message is one line for the user."""


class BackendUnavailable(BackendError):
    """The control plane cannot be reached or its connection settings are unusable."""


@dataclass
class ApplyResult:
    changed: bool
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    # Field paths whose value the real run will allocate and check mode cannot know yet
    # (the API server picks free node ports at random, in a dry run as in the real one).
    to_be_allocated: list[str] = field(default_factory=list)

    @property
    def diff(self) -> dict[str, str]:
        return {
            "before": dump_yaml(self.before) if self.before else "",
            "after": dump_yaml(self.after) if self.after else "",
        }


class ServiceBackend(Protocol):
    def get(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list(self) -> list[dict[str, Any]]: ...

    def apply(
        self, manifest: dict[str, Any], check_mode: bool = False, force_conflicts: bool = False
    ) -> ApplyResult: ...

    def delete(self, namespace: str, name: str, check_mode: bool = False) -> ApplyResult: ...


def prepare_service(
    node_port_range: NodePortRange,
    options: Mapping[str, Any] | None = None,
    definition: Mapping[str, Any] | None = None,
    ip_families: Sequence[str] | None = DEFAULT_SERVICE_IP_FAMILIES,
) -> dict[str, Any]:
    """A defaulted, validated v1 Service manifest from module options or a raw definition.

    ``ip_families`` are the families the cluster serves (its service CIDRs), first the default;
    None skips the checks against them (a Service read back, which passed them when applied).
    """
    if definition is not None:
        if not is_service_manifest(definition):
            raise InvalidService(
                [
                    f"definition is {definition.get('apiVersion')} {definition.get('kind')}, "
                    "not a v1 Service"
                    if isinstance(definition, Mapping)
                    else "definition is not a Kubernetes object"
                ]
            )
        manifest = dict(definition)
    else:
        manifest = manifest_from_options(options or {})
    manifest = apply_defaults(manifest)
    errors = validate_service(manifest, node_port_range, ip_families=ip_families)
    meta = manifest.get("metadata") or {}
    if errors:
        raise InvalidService(errors, meta.get("name") or meta.get("generateName") or "")
    if not meta.get("name"):
        # Server-side apply addresses an object by its name, and a generated one would make
        # every re-run create one more Service.
        raise InvalidService(
            [
                "metadata.name: Required value: applying needs a fixed name (generateName would "
                "create another Service on every run)"
            ]
        )
    return manifest


def owned_view(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of a Service nodeport-lb manages, for change detection and diffs."""
    if not obj:
        return None
    meta = obj.get("metadata") or {}
    spec = dict(obj.get("spec") or {})
    for cluster_owned in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        spec.pop(cluster_owned, None)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {k: meta[k] for k in OWNED_METADATA if meta.get(k)},
        "spec": spec,
    }


def service_facts(obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the modules return about a Service: the object, its node ports and hcnp."""
    if not obj:
        return {"service": {}, "node_ports": {}, "health_check_node_port": None}
    svc = Service.from_manifest(obj)
    return {
        "service": dict(obj),
        "node_ports": svc.node_ports,
        "health_check_node_port": svc.health_check_node_port or None,
    }
