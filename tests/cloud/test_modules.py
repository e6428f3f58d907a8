"""The modules as Terraform users meet them: a nodePort change on AWS replaces the target group
before destroying the old one (plan JSON of the offline stand-in), the stand-ins keep the real
modules' outputs and lifecycles, the module inputs' rules, and the examples.

Where the AWS provider is installed in a local filesystem mirror (TF_PLUGIN_MIRROR, default
/opt/tf-plugins), the example is also validated against its real schema, and the nodePort change
is planned with the real provider too (from a state written by hand: an apply needs AWS)."""

from __future__ import annotations

import json
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


needs_aws_provider = pytest.mark.skipif(
    not any(PLUGIN_MIRROR.glob("*/hashicorp/aws")),
    reason=f"no AWS provider in the filesystem mirror {PLUGIN_MIRROR} (TF_PLUGIN_MIRROR)",
)


@pytest.fixture
def aws_provider(offline_terraform, tmp_path, monkeypatch) -> Path:
    """A copy of terraform/ and a CLI configuration that installs the AWS provider from the
    local mirror only (it holds nothing else)."""
    config = tmp_path / "mirror.tfrc"
    config.write_text(
        "disable_checkpoint = true\n"
        f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PLUGIN_MIRROR}"\n'
        '    include = ["*/*/*"]\n  }\n}\n'
    )
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(config))
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM_DIR, copy, symlinks=True)
    return copy


@needs_aws_provider
def test_aws_example_validates_against_the_real_provider_schema(aws_provider):
    # Every attribute the module sets (the example calls it), checked by the AWS provider's
    # own schema; validate loads the schema only and calls no AWS API.
    copy, root = aws_provider, "examples/aws-nlb"
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


# A root that plans aws-nlb with the real provider and makes no AWS call: static credentials,
# every check that would call AWS skipped, and the endpoints it could use pointed at a closed
# loopback port, so nothing can leave the machine even if the provider tried.
AWS_PLAN_ROOT = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "eu-central-1"
  access_key                  = "offline"
  secret_key                  = "offline"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  endpoints {
    ec2   = "http://127.0.0.1:9"
    elbv2 = "http://127.0.0.1:9"
    sts   = "http://127.0.0.1:9"
  }
}

variable "node_port" {
  type = number
}

module "lb" {
  source           = "../terraform/modules/aws-nlb"
  name             = "default-python-lb-http"
  vpc_id           = "vpc-1"
  subnet_ids       = ["subnet-a", "subnet-b"]
  port             = 80
  target_port      = var.node_port
  healthcheck_port = 31897
  targets          = ["10.0.1.10", "10.0.1.11"]
}
"""


def applied_state(plan: dict, schema: dict) -> dict:
    """The state an apply of ``plan`` would leave: its planned values, with what AWS would
    compute (ARNs, ids, tags_all, ...) filled in by hand. A real apply needs AWS."""
    base = "arn:aws:elasticloadbalancing:eu-central-1:000000000000"
    lb, group = f"{base}:loadbalancer/net/lb/1", f"{base}:targetgroup/nplb-1/1"
    computed = {
        "aws_lb": {"id": lb, "arn": lb, "dns_name": "lb.test.invalid", "zone_id": "Z0"},
        "aws_lb_target_group": {"id": group, "arn": group, "name": "nplb-1"},
        "aws_lb_listener": {"id": f"{base}:listener/net/lb/1/1", "load_balancer_arn": lb},
        "aws_lb_target_group_attachment": {"target_group_arn": group},
    }
    provider = next(iter(schema["provider_schemas"].values()))["resource_schemas"]
    resources: dict[tuple, dict] = {}
    for change in plan["resource_changes"]:
        kind, values = change["type"], dict(change["change"]["after"])
        values.update(computed[kind])
        values["tags_all"] = values.get("tags") or {}
        if kind == "aws_lb":
            values["security_groups"] = []
        if kind == "aws_lb_target_group":
            values["load_balancer_arns"] = [lb]
        if kind == "aws_lb_listener":
            values["arn"] = values["id"]
            values["default_action"][0].update(target_group_arn=group, order=1)
        if kind == "aws_lb_target_group_attachment":
            values["id"] = f"{group}-{change['index']}"
        key = (change["module_address"], kind, change["name"])
        resource = resources.setdefault(key, {
            "module": key[0], "mode": "managed", "type": kind, "name": key[2],
            "provider": f'provider["{change["provider_name"]}"]', "instances": [],
        })  # fmt: skip
        instance = {"schema_version": provider[kind]["version"], "attributes": values}
        if "index" in change:
            instance["index_key"] = change["index"]
        resource["instances"].append(instance)
    return {"version": 4, "serial": 1, "lineage": "00000000-0000-0000-0000-000000000001",
            "terraform_version": plan["terraform_version"], "outputs": {},
            "resources": list(resources.values())}  # fmt: skip


@needs_aws_provider
def test_real_provider_plans_a_node_port_change_as_create_before_destroy(aws_provider, tmp_path):
    # The same plan as the stand-in's, with the AWS provider's own schema and diff logic: the
    # port of a target group cannot change in place, so it is replaced, new one first.
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(AWS_PLAN_ROOT)
    engine = find_engine()
    engine.init(root)

    def plan(node_port: int) -> dict:
        plan_file = root / f"{node_port}.tfplan"
        subprocess.run(
            [*engine.command, f"-chdir={root}", "plan", "-refresh=false", "-input=false",
             "-no-color", f"-var=node_port={node_port}", f"-out={plan_file}"],
            env=engine.env, check=True, capture_output=True,
        )  # fmt: skip
        return engine.show_json(root, plan_file)

    created = plan(31001)
    schema = subprocess.run(
        [*engine.command, f"-chdir={root}", "providers", "schema", "-json"],
        env=engine.env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    state = applied_state(created, json.loads(schema))
    (root / "terraform.tfstate").write_text(json.dumps(state))

    unchanged = plan(31001)
    assert {tuple(c["change"]["actions"]) for c in unchanged["resource_changes"]} == {("no-op",)}

    changes = {c["address"]: c["change"]["actions"] for c in plan(31002)["resource_changes"]}
    assert changes["module.lb.aws_lb_target_group.this"] == ["create", "delete"]
    for node in ("10.0.1.10", "10.0.1.11"):
        address = f'module.lb.aws_lb_target_group_attachment.this["{node}"]'
        assert changes[address] == ["create", "delete"]
    assert changes["module.lb.aws_lb_listener.this"] == ["update"]
    assert changes["module.lb.aws_lb.this[0]"] == ["no-op"]
