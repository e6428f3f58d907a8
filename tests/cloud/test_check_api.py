"""`cloud check` with the Service from the Kubernetes API: the real kubernetes client against
the project's stand-in for the API server on 127.0.0.1 (tests/kube/apiserver.py; no API server
can run here), the Terraform state from the offline stand-in module."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.cloud.conftest import SEED_SERVICE, TERRAFORM_DIR
from tests.kube.apiserver import FakeApiServer

pytestmark = pytest.mark.xdist_group("terraform")


@pytest.fixture
def apiserver():
    with FakeApiServer() as server:
        yield server


def test_drift_after_the_api_recreated_the_service(cloud_cli, apiserver, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "lab", "cluster": {"server": apiserver.url}}],
                "users": [{"name": "operator", "user": {}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "operator"}}],
                "current-context": "lab",
            }
        )
    )
    apiserver.add(SEED_SERVICE)
    cloud = cloud_cli(
        "--provider", "exoscale", "--kubeconfig", str(kubeconfig),
        "--service", "default/python-lb", "--zone", "ch-gva-2", "--instance-pool-id", "pool-1",
        "--module-dir", str(TERRAFORM_DIR / "test-offline"), "--workdir", str(tmp_path / "work"),
    )  # fmt: skip
    code, _, err = cloud("apply", "--auto-approve")
    assert code == 0, err
    assert cloud("check")[0] == 0

    recreated = copy.deepcopy(SEED_SERVICE)
    recreated["spec"]["healthCheckNodePort"] = 31950
    apiserver.add(recreated)
    code, out, err = cloud("check")
    assert code == 1, err
    assert "current healthCheckNodePort 31950" in out

    broken = copy.deepcopy(SEED_SERVICE)
    broken["spec"]["ports"][0]["nodePort"] = '${file("/etc/hostname")}'
    apiserver.add(broken)
    code, out, err = cloud("plan")
    assert code == 1, err
    assert "the cluster of" in err and "Service default/python-lb is invalid" in err
    assert "spec.ports[0].nodePort" in err

    # a Service the API does not have is "not found" (404), not an error of the reader
    from nodeport_lb.cli import main

    args = [
        "--provider",
        "exoscale",
        "--kubeconfig",
        str(kubeconfig),
        "--service",
        "default/absent",
    ]
    assert main(["cloud", "render", *args]) == 2
