"""`nodeport-lb cloud render`: a Service becomes module variables; the TCP mistake is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from nodeport_lb.cli import main
from tests.cloud.conftest import SEED_SERVICE, write_store


def render(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, dict, str]:
    code = main(["cloud", "render", "--manifests", str(store), *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else {}), err


def cluster_service() -> dict:
    service = copy.deepcopy(SEED_SERVICE)
    service["metadata"]["name"] = "web"
    service["spec"].update(type="NodePort", externalTrafficPolicy="Cluster")
    del service["spec"]["healthCheckNodePort"]
    return service


def test_exoscale_gets_the_seed_settings_with_http_on_the_hcnp(capsys, seed_store):
    code, variables, _ = render(
        capsys, seed_store, "--provider", "exoscale", "--service", "default/python-lb",
        "--zone", "ch-gva-2", "--instance-pool-id", "pool-1",
    )  # fmt: skip
    assert code == 0
    assert variables == {
        "name": "default-python-lb-http",
        "protocol": "tcp",
        "port": 80,
        "target_port": 31001,
        "external_traffic_policy": "Local",
        "node_port_range": "30000-32767",
        "healthcheck_mode": "http",
        "healthcheck_port": 31897,
        "healthcheck_uri": "/",
        "healthcheck_interval": 10,
        "healthcheck_timeout": 3,
        "healthcheck_retries": 1,
        "strategy": "source-hash",
        "zone": "ch-gva-2",
        "instance_pool_id": "pool-1",
    }


def test_aws_checks_healthz_on_the_hcnp_with_thresholds_2_2(capsys, seed_store):
    code, variables, _ = render(
        capsys, seed_store, "--provider", "aws", "--service", "default/python-lb",
        "--node-address", "10.0.1.10", "--node-address", "10.0.1.11",
        "--vpc-id", "vpc-1", "--subnet", "subnet-a", "--subnet", "subnet-b",
    )  # fmt: skip
    assert code == 0
    assert variables["protocol"] == "TCP"
    assert (variables["port"], variables["target_port"]) == (80, 31001)
    assert variables["healthcheck_mode"] == "http"
    assert variables["healthcheck_port"] == 31897
    assert variables["healthcheck_path"] == "/healthz"
    assert (variables["healthy_threshold"], variables["unhealthy_threshold"]) == (2, 2)
    assert variables["targets"] == ["10.0.1.10", "10.0.1.11"]
    assert variables["subnet_ids"] == ["subnet-a", "subnet-b"]
    assert variables["vpc_id"] == "vpc-1"


@pytest.mark.parametrize("provider", ["exoscale", "aws"])
def test_tcp_is_refused_for_local_with_the_reason(capsys, seed_store, provider):
    code, _, err = render(
        capsys, seed_store, "--provider", provider, "--service", "default/python-lb",
        "--healthcheck-mode", "tcp",
    )  # fmt: skip
    assert code == 1
    assert "refusing a tcp health check" in err
    assert "open on every node" in err and "always passes" in err
    assert "--healthcheck-mode http" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("provider", "path_var"), [("aws", "healthcheck_path"), ("exoscale", "healthcheck_uri")]
)
def test_cluster_service_checks_the_proxy_healthz(capsys, tmp_path, provider, path_var):
    store = write_store(tmp_path / "store", cluster_service())
    code, variables, _ = render(capsys, store, "--provider", provider, "--service", "default/web")
    assert code == 0
    assert variables["external_traffic_policy"] == "Cluster"
    assert (variables["healthcheck_port"], variables[path_var]) == (10256, "/healthz")


def test_tcp_is_allowed_for_cluster(capsys, tmp_path):
    store = write_store(tmp_path / "store", cluster_service())
    code, variables, _ = render(
        capsys, store, "--provider", "aws", "--service", "default/web", "--healthcheck-mode", "tcp"
    )
    assert code == 0 and variables["healthcheck_mode"] == "tcp"


def test_local_without_hcnp_is_refused(capsys, tmp_path):
    service = copy.deepcopy(SEED_SERVICE)
    service["spec"].update(type="NodePort")
    del service["spec"]["healthCheckNodePort"]
    store = write_store(tmp_path / "store", service)
    code, _, err = render(capsys, store, "--provider", "aws", "--service", "default/python-lb")
    assert code == 1 and "no healthCheckNodePort" in err


def test_hcnp_outside_a_custom_range_is_refused(capsys, seed_store):
    code, _, err = render(
        capsys, seed_store, "--provider", "exoscale", "--service", "default/python-lb",
        "--node-port-range", "31000-31500",
    )  # fmt: skip
    # The Service itself is invalid for that range, as the API server would say.
    assert code == 1
    assert (
        "spec.healthCheckNodePort: Invalid value: 31897: provided port is not in the valid "
        "range. The range of valid ports is 31000-31500"
    ) in err
    assert "set aside" in err


def test_the_node_port_range_flag_is_the_one_of_the_other_commands(capsys, seed_store):
    """--service-node-port-range, as agent and service validate take it: a port outside a
    custom range is refused, and inside it the Service is rendered with that range."""
    args = ("--provider", "exoscale", "--service", "default/python-lb", "--zone", "ch-gva-2")
    code, _, err = render(capsys, seed_store, *args, "--service-node-port-range", "31000-31500")
    assert code == 1
    assert "Invalid value: 31897: provided port is not in the valid range" in err
    assert "The range of valid ports is 31000-31500" in err
    code, variables, _ = render(
        capsys, seed_store, *args, "--service-node-port-range", "31000-31999"
    )
    assert code == 0
    assert variables["node_port_range"] == "31000-31999"
    assert (variables["target_port"], variables["healthcheck_port"]) == (31001, 31897)


def test_several_ports_need_a_port_name(capsys, tmp_path):
    service = copy.deepcopy(SEED_SERVICE)
    service["spec"]["ports"].append(
        {"name": "https", "port": 443, "nodePort": 31443, "protocol": "TCP", "targetPort": 8443}
    )
    store = write_store(tmp_path / "store", service)
    args = ("--provider", "exoscale", "--service", "default/python-lb")
    code, _, err = render(capsys, store, *args)
    assert code == 1 and "--port-name" in err and "http, https" in err
    code, variables, _ = render(capsys, store, *args, "--port-name", "https")
    assert code == 0
    assert (variables["name"], variables["port"], variables["target_port"]) == (
        "default-python-lb-https",
        443,
        31443,
    )


def test_var_overrides_with_json_values(capsys, seed_store):
    code, variables, _ = render(
        capsys, seed_store, "--provider", "exoscale", "--service", "default/python-lb",
        "--var", "healthcheck_interval=5", "--var", "description=shop front",
    )  # fmt: skip
    assert code == 0
    assert variables["healthcheck_interval"] == 5
    assert variables["description"] == "shop front"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "default/missing"], "Service default/missing not found"),
        (["--service", "default/python-lb", "--vpc-id", "v"], "--vpc-id is an option of"),
        (["--service", "default/python-lb", "--node-address", "10.0.0.1"], "targets the instance"),
        (["--service", "default/python-lb", "--var", "oops"], "expected NAME=VALUE"),
    ],
)
def test_bad_input_is_exit_2_with_one_message(capsys, seed_store, args, message):
    code, _, err = render(capsys, seed_store, "--provider", "exoscale", *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_unreadable_kubeconfig_is_exit_2(capsys, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("not: [a kubeconfig")
    code = main(
        ["cloud", "render", "--provider", "aws", "--kubeconfig", str(kubeconfig),
         "--service", "default/python-lb"]
    )  # fmt: skip
    assert code == 2
    assert "--kubeconfig" in capsys.readouterr().err


def test_long_names_cut_for_aws_stay_distinct(capsys, tmp_path):
    # AWS names are at most 32 characters: two Services that differ only past that point
    # would otherwise get one NLB name.
    names = []
    for suffix in ("alpha", "beta"):
        service = copy.deepcopy(SEED_SERVICE)
        service["metadata"]["name"] = f"shop-frontend-with-a-long-name-{suffix}"
        store = write_store(tmp_path / suffix, service)
        code, variables, err = render(
            capsys,
            store,
            "--provider",
            "aws",
            "--service",
            f"default/{service['metadata']['name']}",
        )
        assert code == 0, err
        names.append(variables["name"])
    assert all(len(name) <= 32 for name in names)
    assert names[0] != names[1]
    assert all(name.startswith("default-shop-frontend-") for name in names)
