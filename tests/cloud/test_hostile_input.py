"""Nothing the cloud driver passes to Terraform is evaluated by it, and a Service that does not
validate never reaches it: Terraform for real (offline stand-in), the state read back."""

from __future__ import annotations

import copy
import json

import pytest

from tests.cloud.conftest import SEED_SERVICE, exoscale_args, write_store

pytestmark = pytest.mark.xdist_group("terraform")

SENTINEL_TEXT = "sentinel-read-by-terraform"


@pytest.fixture
def sentinel(tmp_path):
    """A file whose content shows up in the state only if Terraform evaluated file()."""
    path = tmp_path / "sentinel"
    path.write_text(SENTINEL_TEXT)
    return path


@pytest.mark.parametrize("action", ["plan", "apply", "check"])
def test_service_with_a_template_protocol_is_set_aside(cloud_cli, tmp_path, sentinel, action):
    service = copy.deepcopy(SEED_SERVICE)
    service["spec"]["ports"][0]["protocol"] = f'${{file("{sentinel}")}}'
    store = write_store(tmp_path / "store", service)
    workdir = tmp_path / "work"
    extra = ["--auto-approve"] if action == "apply" else []
    code, out, err = cloud_cli(*exoscale_args(store, workdir))(action, *extra)
    assert code in (1, 2), err  # refused (plan, apply) / cannot check
    assert "service_default_python-lb.yaml: Service default/python-lb is invalid" in err
    assert "set aside; nothing of it was passed to Terraform" in err
    assert "spec.ports[0].protocol: Unsupported value" in err
    assert SENTINEL_TEXT not in out + err
    assert not workdir.exists()  # no root module written: Terraform never ran


def test_templates_in_values_reach_the_state_as_written(cloud_cli, seed_store, tmp_path, sentinel):
    interpolation = f'${{file("{sentinel}")}}'
    directive = "%{ if true }yes%{ else }no%{ endif }"
    already_escaped = "$${literal}"
    workdir = tmp_path / "work"
    cloud = cloud_cli(*exoscale_args(seed_store, workdir))
    code, out, err = cloud(
        "apply", "--auto-approve",
        "--var", f"description={interpolation}",
        "--instance-pool-id", directive,
        "--zone", already_escaped,
    )  # fmt: skip
    assert code == 0, err

    state = json.loads((workdir / "terraform.tfstate").read_text())
    service = next(r for r in state["resources"] if r["name"] == "nlb_service")
    # terraform_data keeps a dynamic value: {"value": ..., "type": ...}
    values = service["instances"][0]["attributes"]["output"]["value"]["values"]
    assert values["description"] == interpolation
    assert values["instance_pool_id"] == directive
    assert values["zone"] == already_escaped
    assert SENTINEL_TEXT not in json.dumps(state) + out + err


def test_templates_in_keys_are_literal_too(tmp_path):
    from nodeport_lb.cloud.driver import terraform_literal

    escaped = terraform_literal({"tags": {"${k}": ["%{v}", 1, None, True]}})
    assert escaped == {"tags": {"$${k}": ["%%{v}", 1, None, True]}}


def test_store_with_an_unreadable_file_is_not_a_missing_service(cloud_cli, tmp_path):
    store = write_store(tmp_path / "store")
    (store / "broken.yaml").write_text("kind: Service\nmetadata: [unclosed\n")
    code, _, err = cloud_cli(*exoscale_args(store, tmp_path / "work"))("plan")
    assert code == 2
    assert "cannot be read" in err and "broken.yaml" in err
