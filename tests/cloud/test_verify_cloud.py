"""`nodeport-lb verify` on an inventory that declares a cloud load balancer (group cloud_lb,
from `cloud apply --inventory-out`) runs the drift check: real ansible-inventory, the real
testinfra suite, offline Terraform state."""

from __future__ import annotations

import pytest

from nodeport_lb.cli import main
from tests.cloud.conftest import exoscale_args
from tests.cloud.test_check import recreate

pytestmark = pytest.mark.xdist_group("terraform")


def test_verify_reports_cloud_drift(cloud_cli, seed_store, tmp_path, capfd):
    inventory = tmp_path / "cloud.yml"
    cloud = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))
    assert cloud("apply", "--auto-approve", "--inventory-out", str(inventory))[0] == 0

    assert main(["verify", "-i", str(inventory), "-n", "0"]) == 0
    out = capfd.readouterr().out
    assert ": OK — " in out and " 0 problem(s)" in out

    recreate(seed_store, hcnp=31950)
    assert main(["verify", "-i", str(inventory), "-n", "0"]) == 1
    out = capfd.readouterr().out
    assert "exoscale-default-python-lb-80: default/python-lb TCP 80" in out
    assert "current healthCheckNodePort 31950" in out
    assert ": FAILED — " in out and " 1 problem(s)" in out
