"""Cloud load balancers (group ``cloud_lb``, written by ``nodeport-lb cloud apply
--inventory-out``): each one still matches its Service — HTTP check on the current
healthCheckNodePort, traffic to the current nodePort, no port missing or left over. The same
check as ``nodeport-lb cloud check``, from the Terraform state and the control plane."""

from __future__ import annotations

from nodeport_lb.cloud.check import check_inventory_host
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.report import fail_on


def test_cloud_load_balancer_matches_its_service(inventory: Inventory, cloud_lb: str):
    lines = check_inventory_host(inventory.vars_of(cloud_lb))
    fail_on([f"{cloud_lb}: {line}" for line in lines])
