"""An installed nodeport-lb (pip install .) carries every template and finds it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import source_copy

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_every_template(tmp_path: Path) -> None:
    source = str(source_copy(tmp_path))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), source],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("nodeport_lb-*.whl")
    shipped = {
        n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("nodeport_lb/templates/")
    }
    expected = {
        f"nodeport_lb/templates/{p.relative_to(REPO / 'templates')}"
        for p in (REPO / "templates").rglob("*")
        if p.is_file()
    }
    assert expected and expected <= shipped
    modules = {
        n for n in zipfile.ZipFile(wheel).namelist() if n.startswith("nodeport_lb/terraform/")
    }
    assert "nodeport_lb/terraform/modules/exoscale-nlb/main.tf" in modules
    assert "nodeport_lb/terraform/modules/lb-healthcheck/tests/rules.tftest.hcl" in modules
    assert not any("/.terraform/" in n or n.endswith(".tfstate") for n in modules)


def test_ansible_doc_teaches_the_modules() -> None:
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    for module in ("nodeport_service", "nodeport_service_info"):
        proc = subprocess.run(
            [str(ansible_doc), "-M", "modules", module],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "EXAMPLES" in proc.stdout and "RETURN VALUES" in proc.stdout
        assert "store" in proc.stdout and "service_node_port_range" in proc.stdout
