"""The modules as Terraform users meet them: a nodePort change on AWS replaces the target group
before destroying the old one (plan JSON of the offline stand-in), the stand-ins keep the real
modules' outputs and lifecycles, the module inputs' rules, and the examples.

Where the AWS provider is installed in a local filesystem mirror (TF_PLUGIN_MIRROR, default
/opt/tf-plugins), the example and the module are also validated against its real schema."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.cloud.engine import find_engine
from tests.cloud.conftest import TERRAFORM_DIR, aws_args
from tests.cloud.test_check import recreate

pytestmark = pytest.mark.xdist_group("terraform")

MODULES = TERRAFORM_DIR / "modules"
STAND_INS = {"exoscale-nlb": "test-offline", "aws-nlb": "test-offline-aws"}
PLUGIN_MIRROR = Path(os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins"))


def one_line(text: str) -> str:
    """Terraform wraps its messages at 80 columns."""
    return " ".join(text.replace("│", " ").split())


def blocks(path: Path, kind: str) -> dict[str, str]:
    """``kind`` blocks of a terraform-fmt'ed file: label(s) -> body (up to the closing brace
    at column 0)."""
    text = path.read_text()
    found = {}
    for match in re.finditer(rf'^{kind} ((?:"[^"]+" ?)+)\{{\n(.*?)^\}}', text, re.M | re.S):
        found[match[1].strip()] = match[2]
    return found


@pytest.mark.parametrize("module", sorted(STAND_INS))
def test_stand_in_outputs_are_the_real_modules_outputs(module):
    real = blocks(MODULES / module / "outputs.tf", "output")
    stand_in = blocks(TERRAFORM_DIR / STAND_INS[module] / "outputs.tf", "output")
    assert list(stand_in) == list(real)

    # the one whose inner names drifted once (uri vs path): same keys inside
    def inner_names(outputs: dict[str, str]) -> list[str]:
        return re.findall(r"^    (\w+) +=", outputs['"healthcheck"'], re.M)

    assert inner_names(stand_in) == inner_names(real)


@pytest.mark.parametrize("module", sorted(STAND_INS))
def test_stand_in_has_each_real_resource_with_its_lifecycle(module):
    real = blocks(MODULES / module / "main.tf", "resource")
    stand_in = {
        re.search(r'stands_in_for = "(\w+)"', body)[1]: body
        for body in blocks(TERRAFORM_DIR / STAND_INS[module] / "main.tf", "resource").values()
    }
    for labels, body in real.items():
        kind = labels.split('"')[1]
        assert kind in stand_in, f"{STAND_INS[module]} has no stand-in for {kind}"
        cbd = "create_before_destroy = true"
        assert (cbd in body) == (cbd in stand_in[kind]), kind
        assert ("for_each" in body) == ("for_each" in stand_in[kind]), kind


def test_aws_target_group_is_named_from_a_prefix_and_replaced_before_destroyed():
    body = blocks(MODULES / "aws-nlb" / "main.tf", "resource")['"aws_lb_target_group" "this"']
    assert "name_prefix = var.target_group_name_prefix" in body
    assert not re.search(r"^  name +=", body, re.M)  # a fixed name would collide on replace
    assert "create_before_destroy = true" in body


def test_a_node_port_change_creates_the_new_target_group_before_destroying_the_old(
    cloud_cli, seed_store, tmp_path
):
    workdir = tmp_path / "work"
    cloud = cloud_cli(*aws_args(seed_store, workdir))
    assert cloud("apply", "--auto-approve")[0] == 0
    recreate(seed_store, node_port=31002)
    code, _, err = cloud("plan", "--detailed-exitcode")  # rewrites the root for 31002
    assert code == 2, err

    engine = find_engine()
    plan_file = tmp_path / "change.tfplan"
    engine.plan(workdir, plan_file)
    changes = {
        change["address"]: change["change"]["actions"]
        for change in engine.show_json(workdir, plan_file)["resource_changes"]
    }
    assert changes["module.lb.terraform_data.target_group"] == ["create", "delete"]
    for node in ("10.0.1.10", "10.0.1.11"):
        address = f'module.lb.terraform_data.target_group_attachment["{node}"]'
        assert changes[address] == ["create", "delete"]
    assert changes["module.lb.terraform_data.listener"] == ["update"]  # in place, never gone
    assert changes["module.lb.terraform_data.lb[0]"] == ["no-op"]


def test_proxy_v2_is_refused_with_instance_targets_for_local(cloud_cli, seed_store, tmp_path):
    cloud = cloud_cli(*aws_args(seed_store, tmp_path / "work"))
    code, _, err = cloud("plan", "--var", "proxy_protocol_v2=true", "--var", "target_type=instance")
    assert code == 1
    assert "proxy_protocol_v2 is refused with target_type instance" in one_line(err)
    code, _, err = cloud("plan", "--var", "proxy_protocol_v2=true")  # ip targets
    assert code == 0, err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("deregistration_delay", "3601", "deregistration_delay must be a whole number"),
        ("target_group_name_prefix", '"toolong"', "target_group_name_prefix: 1-6 letters"),
    ],
)
def test_aws_inputs_are_checked_at_plan_time(
    cloud_cli, seed_store, tmp_path, variable, value, message
):
    code, _, err = cloud_cli(*aws_args(seed_store, tmp_path / "work"))(
        "plan", "--var", f"{variable}={value}"
    )
    assert code == 1
    assert message in one_line(err)


def test_examples_are_one_root_per_module():
    for module in STAND_INS:
        example = TERRAFORM_DIR / "examples" / module / "main.tf"
        assert f'source = "../../modules/{module}"' in example.read_text()


@pytest.mark.skipif(
    not (PLUGIN_MIRROR / "registry.terraform.io" / "hashicorp" / "aws").is_dir(),
    reason=f"no AWS provider in the filesystem mirror {PLUGIN_MIRROR} (TF_PLUGIN_MIRROR)",
)
@pytest.mark.parametrize("root", ["examples/aws-nlb", "modules/aws-nlb"])
def test_aws_example_and_module_validate_against_the_real_provider_schema(
    offline_terraform, tmp_path, monkeypatch, root
):
    # Every attribute the module sets, checked by the AWS provider's own schema; validate
    # loads the schema only and calls no AWS API.
    config = tmp_path / "mirror.tfrc"
    config.write_text(
        "disable_checkpoint = true\n"
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n'
        '    include = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_DIR, copy, symlinks=True)
    engine = find_engine()
    engine.init(copy / root)
    result = subprocess.run(
        [*engine.command, f"-chdir={copy / root}", "validate", "-no-color"],
        env=engine.env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The configuration is valid" in result.stdout
