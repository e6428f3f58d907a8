"""Each Service option is declared once, in nodeport_lb.model's tables: the module's argument
spec is built from them, and its documentation (as ansible-doc shows it) and the manifest are
held to them here, so an option the model knows cannot be missing from the module or its docs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import util
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from nodeport_lb import model
from nodeport_lb.model import (
    PORT_OPTIONS,
    SERVICE_OPTION_TABLE,
    Option,
    manifest_from_options,
    service_argument_spec,
)

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DOC = str(Path(sys.executable).parent / "ansible-doc")
SPEC_KEYS = ("type", "elements", "choices", "default", "required")


@pytest.fixture(scope="module")
def documented() -> dict[str, Any]:
    """The module's options as ansible-doc reads them (fragments merged)."""
    proc = subprocess.run(
        [ANSIBLE_DOC, "--json", "-M", "modules", "nodeport_service"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["nodeport_service"]["doc"]["options"]


def _documented_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: doc[key] for key in SPEC_KEYS if key in doc and doc[key] is not False}


def _declared_spec(spec: dict[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in SPEC_KEYS if key in spec and spec[key] is not False}


@pytest.mark.parametrize("option", [o.name for o in SERVICE_OPTION_TABLE])
def test_every_service_option_is_documented_as_declared(documented, option: str) -> None:
    assert option in documented, f"{option}: in the model, not in the module's documentation"
    declared = dict(service_argument_spec()[option])
    declared.pop("options", None)
    assert _documented_spec(documented[option]) == _declared_spec(declared)


@pytest.mark.parametrize("option", [o.name for o in PORT_OPTIONS])
def test_every_port_option_is_documented_as_declared(documented, option: str) -> None:
    suboptions = documented["ports"]["suboptions"]
    assert option in suboptions, f"ports[].{option}: in the model, not documented"
    declared = service_argument_spec()["ports"]["options"][option]
    assert _documented_spec(suboptions[option]) == _declared_spec(declared)


def test_no_port_option_is_documented_that_the_model_does_not_take(documented) -> None:
    assert set(documented["ports"]["suboptions"]) == {o.name for o in PORT_OPTIONS}


def test_every_port_option_reaches_the_manifest() -> None:
    port = {
        "name": "http",
        "port": 80,
        "target_port": 8080,
        "node_port": 31001,
        "protocol": "TCP",
        "app_protocol": "http",
    }
    assert set(port) == {o.name for o in PORT_OPTIONS}, "give every port option a value here"
    manifest = manifest_from_options({"name": "web", "type": "NodePort", "ports": [port]})
    rendered = manifest["spec"]["ports"][0]
    assert rendered == {o.field: port[o.name] for o in PORT_OPTIONS}


def _script(name: str):
    spec = util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_modules_documentation_is_written_from_the_tables() -> None:
    source = (REPO / "modules" / "nodeport_service.py").read_text()
    assert _script("module_docs").render(source) == source, "run scripts/module_docs.py"


def test_a_port_field_added_in_the_table_is_taken_rendered_and_documented(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Adding a port option is one entry in the model's table: the module's argument spec
    takes it, the manifest gets its field, ansible-doc shows it once the docs are written."""
    extra = Option(
        "example_hint",
        "exampleHint",
        {"type": "str", "choices": ["fast", "slow"]},
        ("A port field that exists only in this test.",),
    )
    monkeypatch.setattr(model, "PORT_OPTIONS", (*model.PORT_OPTIONS, extra))
    port = {"name": "http", "port": 80, "example_hint": "fast"}

    # the module's argument spec, for its own options and for a services-role entry
    spec = util.spec_from_file_location(
        "nodeport_service", REPO / "modules" / "nodeport_service.py"
    )
    assert spec and spec.loader
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = {"store": {"path": str(tmp_path)}, "name": "web", "ports": [port]}
    result = ArgumentSpecValidator(module.argument_spec()).validate(params)
    assert not result.error_messages
    assert result.validated_parameters["ports"][0]["example_hint"] == "fast"
    refused = ArgumentSpecValidator(module.argument_spec()).validate(
        {**params, "ports": [{**port, "example_hint": "medium"}]}
    )
    assert any("example_hint" in message for message in refused.error_messages)

    # the manifest, and the published form read back
    manifest = manifest_from_options(
        {"name": "web", "type": "NodePort", "ports": [result.validated_parameters["ports"][0]]}
    )
    assert manifest["spec"]["ports"][0]["exampleHint"] == "fast"
    assert model.options_from_manifest(manifest)["ports"][0]["example_hint"] == "fast"

    # the documentation, written into a copy of the module and read by ansible-doc
    copy = tmp_path / "modules" / "nodeport_service.py"
    copy.parent.mkdir()
    copy.write_text(
        _script("module_docs").render((REPO / "modules" / "nodeport_service.py").read_text())
    )
    proc = subprocess.run(
        [ANSIBLE_DOC, "--json", "-M", str(copy.parent), "nodeport_service"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    options = json.loads(proc.stdout)["nodeport_service"]["doc"]["options"]
    documented = options["ports"]["suboptions"]["example_hint"]
    assert documented["description"] == ["A port field that exists only in this test."]
    assert documented["choices"] == ["fast", "slow"]
