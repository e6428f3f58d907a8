"""The Service the cloud path fronts, read from a manifest store or the Kubernetes API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from nodeport_lb.cloud import CloudError
from nodeport_lb.model import Service
from nodeport_lb.store import ManifestStore


def parse_ref(ref: str) -> tuple[str, str]:
    """``NS/NAME`` or ``NAME`` (namespace default)."""
    namespace, _, name = ref.rpartition("/")
    if not name or "/" in namespace:
        raise CloudError(f"--service {ref!r}: expected NAMESPACE/NAME", exit_code=2)
    return namespace or "default", name


def load_service(ref: str, manifests: Path | None, kubeconfig: Path | None) -> Service:
    namespace, name = parse_ref(ref)
    raw = _read_from_store(manifests, namespace, name) if manifests else None
    if kubeconfig:
        raw = _read_from_api(kubeconfig, namespace, name)
    if raw is None:
        where = f"manifest store {manifests}" if manifests else f"cluster of {kubeconfig}"
        raise CloudError(f"Service {namespace}/{name} not found in the {where}", exit_code=2)
    return Service.from_manifest(raw)


def _read_from_store(path: Path, namespace: str, name: str) -> dict[str, Any] | None:
    if not path.is_dir():
        raise CloudError(f"--manifests {path}: not a directory", exit_code=2)
    return ManifestStore(path).get("Service", namespace, name)


def _read_from_api(kubeconfig: Path, namespace: str, name: str) -> dict[str, Any] | None:
    # Imported here: the kubernetes client is slow to import and only this path needs it.
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError

    try:
        api_client = config.new_client_from_config(config_file=str(kubeconfig))
        service = client.CoreV1Api(api_client).read_namespaced_service(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise CloudError(f"reading Service {namespace}/{name}: {exc.status} {exc.reason}") from exc
    except HTTPError as exc:
        raise CloudError(f"reading Service {namespace}/{name}: {exc}") from exc
    except (ConfigException, OSError, yaml.YAMLError) as exc:
        message = " ".join(str(exc).split())
        raise CloudError(f"--kubeconfig {kubeconfig}: {message}", exit_code=2) from exc
    # camelCase dict, the same shape as a manifest
    return api_client.sanitize_for_serialization(service)
