"""`nodeport-lb cloud check` and `plan --detailed-exitcode`: drift between the deployed cloud
load balancer (the Terraform state, offline stand-ins) and the Service as the store has it now.

The Service is recreated the way the project's own Services backend does it (delete, apply):
what a Helm reinstall does to a Service on a cluster, a new healthCheckNodePort with it."""

from __future__ import annotations

import copy

import pytest
import yaml

from nodeport_lb.cloud.check import HealthCheck, Listener, drift
from nodeport_lb.model import NodePortRange, Service
from nodeport_lb.services.store_backend import StoreBackend
from tests.cloud.conftest import SEED_SERVICE, aws_args, exoscale_args

pytestmark = pytest.mark.xdist_group("terraform")


def recreate(store, *, hcnp: int | None = None, node_port: int | None = None) -> None:
    """Delete the example Service and create it again, as a reinstall does."""
    backend = StoreBackend(str(store), NodePortRange())
    assert backend.delete("default", "python-lb").changed
    service = copy.deepcopy(SEED_SERVICE)
    if hcnp is not None:
        service["spec"]["healthCheckNodePort"] = hcnp
    if node_port is not None:
        service["spec"]["ports"][0]["nodePort"] = node_port
    backend.apply(service)


def test_offline_cycle_drift_after_recreate_then_apply_clears_it(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))

    code, out, err = cloud("apply", "--auto-approve")
    assert code == 0, err
    code, out, err = cloud("check")
    assert code == 0, out + err
    assert "matches the Service" in out and "HTTP check on 31897" in out
    code, _, err = cloud("plan", "--detailed-exitcode")
    assert code == 0, err

    recreate(seed_store, hcnp=31950)  # the reinstalled Service got another hcnp

    code, out, err = cloud("check")
    assert code == 1, out + err
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert "default/python-lb TCP 80" in lines[0]
    assert "health check is HTTP on port 31897" in lines[0]
    assert "current healthCheckNodePort 31950" in lines[0]
    assert "cloud apply" in err

    code, out, err = cloud("plan", "--detailed-exitcode")
    assert code == 2, err
    assert "1 to change" in out

    code, _, err = cloud("apply", "--auto-approve")
    assert code == 0, err
    code, out, err = cloud("check")
    assert code == 0, out + err
    assert "HTTP check on 31950" in out
    code, _, err = cloud("plan", "--detailed-exitcode")
    assert code == 0, err


def test_new_node_port_is_target_port_drift(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))
    assert cloud("apply", "--auto-approve")[0] == 0
    recreate(seed_store, node_port=31002)
    code, out, _ = cloud("check")
    assert code == 1
    assert "target port 31001 is not the nodePort of Service port http, now 31002" in out
    assert "health check" not in out  # the hcnp stayed: nothing else to report


def test_nothing_deployed_is_a_missing_port(cloud_cli, seed_store, tmp_path):
    code, out, _ = cloud_cli(*exoscale_args(seed_store, tmp_path / "never-applied"))("check")
    assert code == 1
    assert "missing port: no load balancer in" in out and "Service port http" in out


def test_deleted_service_leaves_an_extra_port(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))
    assert cloud("apply", "--auto-approve")[0] == 0
    StoreBackend(str(seed_store), NodePortRange()).delete("default", "python-lb")
    code, out, err = cloud("check")
    assert code == 1, err
    assert "no longer exists, the load balancer still forwards this port" in out


def test_aws_state_is_read_through_listener_and_target_group(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*aws_args(seed_store, tmp_path / "work"))
    assert cloud("apply", "--auto-approve")[0] == 0
    code, out, err = cloud("check")
    assert code == 0, out + err
    assert "TCP 80 -> nodePort 31001, HTTP check on 31897" in out
    recreate(seed_store, hcnp=31950, node_port=31002)
    code, out, _ = cloud("check")
    assert code == 1
    assert "module.lb.terraform_data.listener" in out
    assert "target port 31001" in out and "healthCheckNodePort 31950" in out
    assert len(out.splitlines()) == 2


def test_check_cannot_read_an_invalid_service(cloud_cli, seed_store, tmp_path):
    service = copy.deepcopy(SEED_SERVICE)
    service["spec"]["ports"][0]["protocol"] = "HTTP"
    (seed_store / "service_default_python-lb.yaml").write_text(yaml.safe_dump(service))
    code, out, err = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))("check")
    assert code == 2  # not "drift": nothing can be said
    assert 'spec.ports[0].protocol: Unsupported value: "HTTP"' in err
    assert out == ""


def test_detailed_exitcode_is_1_on_error_not_2(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*exoscale_args(seed_store, tmp_path / "work"))
    # bad input is exit 2 without the flag; with it, 2 would read as "changes pending"
    assert cloud("plan", "--var", "oops")[0] == 2
    assert cloud("plan", "--detailed-exitcode", "--var", "oops")[0] == 1
    assert cloud("plan", "--detailed-exitcode", "--var", "healthcheck_mode=tcp")[0] == 1
    code, out, _ = cloud("plan", "--detailed-exitcode")
    assert code == 2 and "2 to add" in out


# drift() itself, on listeners as a state would hold them


def listener(port=80, target_port=31001, mode="http", check_port=31897) -> Listener:
    return Listener("module.lb.x", "TCP", port, target_port, HealthCheck(mode, check_port))


def seed() -> Service:
    return Service.from_manifest(SEED_SERVICE)


def test_drift_names_a_tcp_check_on_a_local_service():
    (line,) = drift("default/python-lb", seed(), [listener(mode="tcp")], None, "w")
    assert "health check is TCP on 31897, not HTTP on the healthCheckNodePort 31897" in line


def test_drift_port_renumbered_is_one_extra_and_one_missing():
    lines = drift("default/python-lb", seed(), [listener(port=8080)], None, "w")
    assert len(lines) == 2
    assert "extra port: the Service no longer has TCP port 8080" in lines[0]
    assert "missing port" in lines[1] and "Service port http" in lines[1]


def test_drift_cluster_service_is_checked_on_the_proxy_healthz():
    manifest = copy.deepcopy(SEED_SERVICE)
    manifest["spec"].update(type="NodePort", externalTrafficPolicy="Cluster")
    del manifest["spec"]["healthCheckNodePort"]
    service = Service.from_manifest(manifest)
    assert drift("default/python-lb", service, [listener(check_port=10256)], None, "w") == []
    assert (
        drift("default/python-lb", service, [listener(mode="tcp", check_port=10256)], None, "w")
        == []
    )
    (line,) = drift("default/python-lb", service, [listener(check_port=31897)], None, "w")
    assert "/healthz port 10256" in line
