"""doctor through the Kubernetes API: the same findings as from a manifest directory.

The API server is the HTTP stand-in of tests/kube (no API server can run here): doctor's
reader is the project's KubernetesBackend over a kubeconfig, nothing patched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.kube.apiserver import FakeApiServer
from tests.kube.test_kube_backend import closed_port_url, kubeconfig

from .test_checks import ingress_nginx
from .test_published_manifests import my_service_cluster

TOKEN = "doctor-token"


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    with FakeApiServer(token=TOKEN) as server:
        yield server


def kubeconfig_file(tmp_path: Path, url: str, token: str = TOKEN) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig({"lab": url}, current="lab", token=token)))
    return str(path)


def test_same_findings_as_from_manifests(doctor, store, apiserver, tmp_path: Path) -> None:
    objects = my_service_cluster(None, {"node-a": 6, "node-b": 2}) + ingress_nginx(
        "Cluster", {"use-proxy-protocol": "true"}
    )
    apiserver.add(*objects)
    from_api = doctor("--kubeconfig", kubeconfig_file(tmp_path, apiserver.url), "--json")
    from_dir = doctor("--manifests", str(store(objects)), "--json")
    assert from_api.code == from_dir.code == 1
    assert (
        sorted(from_api.checks())
        == sorted(from_dir.checks())
        == [
            ("Deployment default/my-app", "no-spread"),
            ("Service default/my-service", "uneven-pods"),
            ("Service ingress-nginx/ingress-nginx-controller", "client-address"),
        ]
    )
    # read-only: lists and one GET of the ConfigMap the controller names, nothing else
    assert {r.method.value for r in apiserver.requests()} == {"GET"}


def test_namespace_narrows_what_is_read(doctor, apiserver, tmp_path: Path) -> None:
    apiserver.add(*my_service_cluster(None, {"node-a": 6, "node-b": 2}))
    run = doctor("--kubeconfig", kubeconfig_file(tmp_path, apiserver.url), "-n", "shop", "--json")
    assert (run.code, run.findings) == (0, [])
    assert any("/namespaces/shop/" in str(r.url) for r in apiserver.requests())


def test_an_unreachable_api_server_is_exit_2_not_no_findings(doctor, tmp_path: Path) -> None:
    run = doctor("--kubeconfig", kubeconfig_file(tmp_path, closed_port_url()))
    assert run.code == 2 and run.out == ""
    assert run.err.startswith("nodeport-lb doctor: cannot read the cluster: cannot reach")
    assert "Traceback" not in run.err


def test_refused_credentials_are_exit_2(doctor, apiserver, tmp_path: Path) -> None:
    run = doctor("--kubeconfig", kubeconfig_file(tmp_path, apiserver.url, token="wrong"))
    assert run.code == 2
    assert "401" in run.err


def test_a_missing_kubeconfig_is_exit_2(doctor, tmp_path: Path) -> None:
    run = doctor("--kubeconfig", str(tmp_path / "nope"))
    assert run.code == 2 and "does not exist" in run.err
