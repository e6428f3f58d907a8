"""The keepalived role turns VRRP authentication on by itself with VRRPv2: a secret generated
once on the controller, kept in a file only its owner reads, never printed."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml

from tests.modules.conftest import run_playbook


def _play(tmp_path: Path, secret_file: Path) -> Path:
    play = [
        {
            "name": "plan keepalived",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                "nodeport_lb_vips": ["10.213.0.240"],
                "nodeport_lb_keepalived_lbs": [
                    {"name": "localhost", "address": "10.213.0.101"},
                    {"name": "lb2", "address": "10.213.0.102"},
                ],
                "nodeport_lb_lb_interface": "eth0",
                "nodeport_lb_keepalived_vrrp_version": 2,
                "nodeport_lb_keepalived_advert_int": 1,
                "nodeport_lb_keepalived_auth_pass_file": str(secret_file),
            },
            "tasks": [
                {
                    "ansible.builtin.include_role": {
                        "name": "keepalived",
                        "tasks_from": "plan.yml",
                    }
                },
                {
                    "ansible.builtin.copy": {
                        "content": "{{ nodeport_lb_keepalived_plan.settings.auth_pass }}",
                        "dest": str(tmp_path / "planned"),
                        "mode": "0600",
                    },
                    "no_log": True,
                },
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    return path


def test_vrrpv2_gets_a_generated_secret_kept_0600_and_never_printed(tmp_path: Path) -> None:
    secret_file = tmp_path / "secrets" / "keepalived-auth-pass"
    play = _play(tmp_path, secret_file)
    first = run_playbook(play, "-v")
    assert first.returncode == 0, first.output
    secret = secret_file.read_text().split()[0]
    assert len(secret) == 8 and secret.isalnum()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert (tmp_path / "planned").read_text() == secret
    assert secret not in first.output
    second = run_playbook(play, "-v")  # the same secret on every run: the LBs must agree
    assert second.returncode == 0, second.output
    assert (tmp_path / "planned").read_text() == secret
