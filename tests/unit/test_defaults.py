"""The roles' defaults, the module documentation and the lab's kube-proxy unit agree with
nodeport_lb.defaults, where the Python side keeps each port and range once, and each role's
Debian packages are the ones the lab's package repository is built from."""

from __future__ import annotations

import ast
import shlex
from importlib import util
from pathlib import Path

import pytest
import yaml

from nodeport_lb import defaults, wheelhouse
from nodeport_lb.lab import hosts
from nodeport_lb.lab import kube_proxy as stand_in
from nodeport_lb.model import NodePortRange

REPO = Path(__file__).resolve().parents[2]

ROLE_DEFAULTS = [
    ("haproxy", "nodeport_lb_healthz_port", defaults.PROXY_HEALTHZ_PORT),
    ("haproxy", "nodeport_lb_agent_check_port", defaults.AGENT_CHECK_PORT),
    ("node_proxy", "nodeport_lb_healthz_port", defaults.PROXY_HEALTHZ_PORT),
    ("node_proxy", "nodeport_lb_agent_check_port", defaults.AGENT_CHECK_PORT),
    ("node_proxy", "nodeport_lb_service_node_port_range", defaults.DEFAULT_NODE_PORT_RANGE),
    ("services", "nodeport_lb_service_node_port_range", defaults.DEFAULT_NODE_PORT_RANGE),
    ("node_proxy", "nodeport_lb_node_proxy_platforms", list(wheelhouse.DEFAULT_PLATFORMS)),
]


ROLE_PACKAGES = [
    ("haproxy", defaults.HAPROXY_PACKAGES),
    ("keepalived", defaults.KEEPALIVED_PACKAGES),
    ("node_proxy", defaults.NODE_PROXY_PACKAGES),
]


def role_defaults(role: str) -> dict:
    return yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text()) or {}


@pytest.mark.parametrize(("role", "variable", "expected"), ROLE_DEFAULTS)
def test_role_default_matches_the_python_default(role: str, variable: str, expected) -> None:
    assert role_defaults(role)[variable] == expected


def test_every_role_default_of_a_shared_port_is_listed() -> None:
    """A role that grows another copy of one of these variables is held to the same value."""
    listed = {(role, variable) for role, variable, _ in ROLE_DEFAULTS}
    shared = {variable for _, variable, _ in ROLE_DEFAULTS}
    for defaults_file in sorted(REPO.glob("roles/*/defaults/main.yml")):
        role = defaults_file.parts[-3]
        for variable in role_defaults(role):
            if variable in shared:
                assert (role, variable) in listed, f"{role}: {variable} is not checked"


def test_the_store_doc_fragment_documents_the_default_range() -> None:
    fragment = REPO / "plugins" / "doc_fragments" / "nodeport_store.py"
    namespace: dict = {}
    exec(compile(fragment.read_text(), str(fragment), "exec"), namespace)
    docs = yaml.safe_load(namespace["ModuleDocFragment"].DOCUMENTATION)
    option = docs["options"]["service_node_port_range"]
    assert option["default"] == defaults.DEFAULT_NODE_PORT_RANGE


def test_the_parsed_default_range_is_the_written_one() -> None:
    assert str(NodePortRange()) == defaults.DEFAULT_NODE_PORT_RANGE
    assert NodePortRange() == NodePortRange.parse(defaults.DEFAULT_NODE_PORT_RANGE)
    assert defaults.DEFAULT_NODE_PORT_LOW in NodePortRange()
    assert defaults.DEFAULT_NODE_PORT_LOW - 1 not in NodePortRange()


def test_the_module_notes_quote_the_default_range() -> None:
    """The example refusal in the module's notes is the API server's message for the default
    range; the notes are literal YAML (ansible-doc reads them without running the module)."""
    module = ast.parse((REPO / "modules" / "nodeport_service.py").read_text())
    documentation = next(
        node.value.value
        for node in module.body
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "DOCUMENTATION"
    )
    notes = " ".join(yaml.safe_load(documentation)["notes"])
    assert f"The range of valid ports is {defaults.DEFAULT_NODE_PORT_RANGE})" in notes


def _module_docs():
    spec = util.spec_from_file_location("module_docs", REPO / "scripts" / "module_docs.py")
    assert spec and spec.loader
    module = util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_documented_range_is_written_from_the_defaults() -> None:
    """The module's notes and the doc fragment's default are written from defaults.py by
    scripts/module_docs.py (ansible-doc reads them as literals); a hand edit shows here."""
    docs = _module_docs()
    for path, blocks in docs.FILES.items():
        source = path.read_text()
        assert docs.render(source, blocks) == source, f"{path.name}: run scripts/module_docs.py"
        drifted = source.replace(defaults.DEFAULT_NODE_PORT_RANGE, "30000-32000")
        assert drifted != source
        assert docs.render(drifted, blocks) != drifted


def test_another_default_range_would_be_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "DEFAULT_NODE_PORT_LOW", 31000)
    monkeypatch.setattr(defaults, "DEFAULT_NODE_PORT_HIGH", 31999)
    monkeypatch.setattr(defaults, "DEFAULT_NODE_PORT_RANGE", "31000-31999")
    docs = _module_docs()
    module = docs.render(docs.MODULE.read_text(), docs.FILES[docs.MODULE])
    assert "Invalid value: 30999:" in module
    assert "The range of valid ports is 31000-31999)" in module
    fragment = docs.render(docs.FRAGMENT.read_text(), docs.FILES[docs.FRAGMENT])
    assert 'default: "31000-31999"' in fragment


def test_the_lab_starts_its_kube_proxy_on_kube_proxys_default_addresses() -> None:
    unit = hosts.kube_proxy_unit("node1")
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    args = stand_in.argument_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.healthz_bind_address == defaults.DEFAULT_HEALTHZ_ADDRESS
    assert args.metrics_bind_address == defaults.DEFAULT_METRICS_ADDRESS
    assert args.hostname_override == "node1"


def argument_spec(role: str) -> dict:
    specs = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]["main"]["options"]


@pytest.mark.parametrize(("role", "packages"), ROLE_PACKAGES)
def test_role_packages_are_the_ones_the_lab_serves(role: str, packages: tuple[str, ...]) -> None:
    """The lab's hosts install from a repository built from nodeport_lb.defaults: a package a
    role adds there and not here would be missing on every lab host."""
    assert role_defaults(role)[f"nodeport_lb_{role}_packages"] == list(packages)
    assert role_defaults(role)[f"nodeport_lb_{role}_install_packages"] is True
    spec = argument_spec(role)
    assert spec[f"nodeport_lb_{role}_packages"]["default"] == list(packages)
    assert spec[f"nodeport_lb_{role}_install_packages"]["default"] is True
