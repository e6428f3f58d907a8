"""The Service the cloud path fronts, read from a manifest store or the Kubernetes API.

Whatever the source, the object goes through the project's one Service validation (the API
server's rules) before any of it reaches Terraform: a Service that does not validate is set
aside with its field errors, never rendered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from nodeport_lb.cloud import CloudError
from nodeport_lb.model import NodePortRange, Service, apply_defaults, is_service_manifest
from nodeport_lb.store import ManifestStore, ObjectKey
from nodeport_lb.validation import validate_service


class ServiceNotFound(CloudError):
    """The Service is not in the source (it may have been deleted)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)


class InvalidService(CloudError):
    """The Service exists but does not validate: set aside, nothing of it reaches Terraform."""


@dataclass(frozen=True)
class RawService:
    manifest: Any
    origin: str  # where it came from, for messages ("store/service_default_web.yaml")


def parse_ref(ref: str) -> tuple[str, str]:
    """``NS/NAME`` or ``NAME`` (namespace default)."""
    namespace, _, name = ref.rpartition("/")
    if not name or "/" in namespace:
        raise CloudError(f"--service {ref!r}: expected NAMESPACE/NAME", exit_code=2)
    return namespace or "default", name


def load_service(
    ref: str,
    manifests: Path | None,
    kubeconfig: Path | None,
    node_port_range: NodePortRange | None = None,
) -> Service:
    """The validated Service ``ref``; ServiceNotFound, InvalidService or CloudError otherwise."""
    namespace, name = parse_ref(ref)
    if kubeconfig:
        raw = _read_from_api(kubeconfig, namespace, name)
        where = f"cluster of {kubeconfig}"
    else:
        assert manifests is not None
        raw = _read_from_store(manifests, namespace, name)
        where = f"manifest store {manifests}"
    if raw is None:
        raise ServiceNotFound(f"Service {namespace}/{name} not found in the {where}")
    return validated(raw, f"{namespace}/{name}", node_port_range or NodePortRange())


def validated(raw: RawService, ref: str, node_port_range: NodePortRange) -> Service:
    if not is_service_manifest(raw.manifest):
        raise InvalidService(f"{raw.origin}: {ref} is not a v1 Service; set aside")
    manifest = apply_defaults(raw.manifest)
    errors = validate_service(manifest, node_port_range)
    if errors:
        details = "".join(f"\n  {error}" for error in errors)
        raise InvalidService(
            f"{raw.origin}: Service {ref} is invalid and was set aside; nothing of it was "
            f"passed to Terraform:{details}"
        )
    return Service.from_manifest(manifest)


def _read_from_store(path: Path, namespace: str, name: str) -> RawService | None:
    if not path.is_dir():
        raise CloudError(f"--manifests {path}: not a directory", exit_code=2)
    contents = ManifestStore(path).load()
    key = ObjectKey("Service", namespace, name)
    if key in contents.objects:
        return RawService(contents.objects[key], str(contents.sources[key]))
    unreadable = [str(error) for error in contents.errors]
    if unreadable:
        # The Service may be in a file that does not parse: "not found" would be a guess.
        raise CloudError(
            f"Service {namespace}/{name} not found in the manifest store {path}, and some of "
            "its files cannot be read:\n  " + "\n  ".join(unreadable),
            exit_code=2,
        )
    return None


def _read_from_api(kubeconfig: Path, namespace: str, name: str) -> RawService | None:
    # Imported here: the kubernetes client is slow to import and only this path needs it.
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from nodeport_lb.kube_client import KubeSettings, new_api_client
    from nodeport_lb.services.base import BackendUnavailable

    try:
        api_client = new_api_client(KubeSettings.resolve({"kubeconfig": str(kubeconfig)}))
        # The raw JSON, not the client's typed model: the object is validated here, by the
        # project's rules, and a malformed one is reported rather than crashing the reader.
        # _preload_content=False gives the HTTP response, not the V1Service the client's
        # annotation promises
        response = cast(
            Any,
            client.CoreV1Api(api_client).read_namespaced_service(
                name, namespace, _preload_content=False
            ),
        )
        manifest = json.loads(response.data)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise CloudError(f"reading Service {namespace}/{name}: {exc.status} {exc.reason}") from exc
    except HTTPError as exc:
        raise CloudError(f"reading Service {namespace}/{name}: {exc}") from exc
    except ValueError as exc:
        raise CloudError(f"reading Service {namespace}/{name}: not JSON ({exc})") from exc
    except (BackendUnavailable, OSError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise CloudError(f"--kubeconfig {kubeconfig}: {message}", exit_code=2) from exc
    # the API server sends apiVersion and kind; a stand-in or proxy might not
    manifest = {"apiVersion": "v1", "kind": "Service", **manifest}
    return RawService(manifest, f"the cluster of {kubeconfig}")
