"""One way to reach a Kubernetes API server, for every part that reads or writes one (the
services backend, the agent's watch, the cloud reader, doctor, verify).

Settings follow kubernetes.core (``kubeconfig`` path or dict, ``context``, ``host``,
``api_key``, ``validate_certs``, ``ca_cert``, ``client_cert``, ``client_key``, ``username`` /
``password``), each falling back to its ``K8S_AUTH_*`` variable; with none of them the
in-cluster service account is used, else the default kubeconfig (``$KUBECONFIG`` or
``~/.kube/config``), as kubectl does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from nodeport_lb.services.base import BackendUnavailable

# kubernetes.core's environment variable for each setting.
ENV_VARS = {
    "kubeconfig": "K8S_AUTH_KUBECONFIG",
    "context": "K8S_AUTH_CONTEXT",
    "host": "K8S_AUTH_HOST",
    "api_key": "K8S_AUTH_API_KEY",
    "username": "K8S_AUTH_USERNAME",
    "password": "K8S_AUTH_PASSWORD",
    "validate_certs": "K8S_AUTH_VERIFY_SSL",
    "ca_cert": "K8S_AUTH_SSL_CA_CERT",
    "client_cert": "K8S_AUTH_CERT_FILE",
    "client_key": "K8S_AUTH_KEY_FILE",
}
_FALSE = {"0", "false", "no", "off", "n", "f"}
_TRUE = {"1", "true", "yes", "on", "y", "t"}


@dataclass(frozen=True)
class KubeSettings:
    """How to reach the API server; what the Ansible modules take as ``store: {...}``."""

    kubeconfig: str | dict[str, Any] | None = None
    context: str | None = None
    host: str | None = None
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    validate_certs: bool | None = None
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    timeout: float = 60.0  # seconds per request, so a hung API server cannot hang a play

    @classmethod
    def resolve(
        cls, options: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> KubeSettings:
        """Given options first, then ``K8S_AUTH_*``, field by field (as kubernetes.core does)."""
        options = dict(options or {})
        environ = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise BackendUnavailable(
                f"unknown Kubernetes connection setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name in known:
            value = options.get(name)
            if value in (None, "") and name in ENV_VARS:
                value = environ.get(ENV_VARS[name]) or None
            if value is not None:
                values[name] = value
        if "validate_certs" in values:
            values["validate_certs"] = _as_bool(values["validate_certs"], "validate_certs")
        return cls(**values)


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise BackendUnavailable(f"{name}: {value!r} is not a boolean")


def client_configuration(settings: KubeSettings) -> client.Configuration:
    """A client configuration of its own (never the process-wide default) for ``settings``."""
    cfg = client.Configuration()
    try:
        if settings.kubeconfig is not None or settings.context:
            _load_kubeconfig(settings.kubeconfig, settings.context, cfg)
        elif not settings.host:
            _load_ambient(cfg)
    except ConfigException as exc:
        raise BackendUnavailable(f"Kubernetes connection settings: {_one_line(exc)}") from None
    # Explicit settings override what a kubeconfig said, as with kubernetes.core.
    if settings.host:
        cfg.host = settings.host.rstrip("/")
    if settings.api_key:
        cfg.api_key = {"authorization": f"Bearer {settings.api_key}"}
        cfg.refresh_api_key_hook = None  # a kubeconfig's token refresher must not replace it
    elif settings.username and settings.password:
        basic = urllib3.util.make_headers(basic_auth=f"{settings.username}:{settings.password}")
        cfg.api_key = {"authorization": basic["authorization"]}
        cfg.refresh_api_key_hook = None
    if settings.validate_certs is not None:
        cfg.verify_ssl = settings.validate_certs
    if settings.ca_cert:
        cfg.ssl_ca_cert = settings.ca_cert
    if settings.client_cert:
        cfg.cert_file = settings.client_cert
    if settings.client_key:
        cfg.key_file = settings.client_key
    return cfg


def _load_kubeconfig(
    kubeconfig: str | dict[str, Any] | None, context: str | None, cfg: client.Configuration
) -> None:
    # persist_config=False: never rewrite the user's kubeconfig (token refreshes).
    if isinstance(kubeconfig, Mapping):
        config.load_kube_config_from_dict(
            dict(kubeconfig), context=context, client_configuration=cfg, persist_config=False
        )
        return
    # Read $KUBECONFIG now, not when the kubernetes package was imported.
    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    paths = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
    if not any(os.path.isfile(p) for p in paths):
        raise ConfigException(f"kubeconfig {path} does not exist")
    config.load_kube_config(
        os.pathsep.join(paths), context=context, client_configuration=cfg, persist_config=False
    )


def _load_ambient(cfg: client.Configuration) -> None:
    """Nothing given: the pod's service account, else the default kubeconfig."""
    try:
        config.load_incluster_config(client_configuration=cfg)
    except ConfigException:
        try:
            _load_kubeconfig(None, None, cfg)
        except ConfigException as exc:
            raise ConfigException(
                "none given (kubeconfig, context, host or K8S_AUTH_*), not running in a "
                f"cluster, and no default kubeconfig: {exc}"
            ) from None


def new_api_client(settings: KubeSettings) -> client.ApiClient:
    """An API client of its own for ``settings``; BackendUnavailable says what is wrong."""
    return client.ApiClient(client_configuration(settings))


def _one_line(value: object) -> str:
    return " ".join(str(value).split())
