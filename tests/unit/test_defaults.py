"""The roles' defaults and the module documentation agree with nodeport_lb.defaults, where the
Python side keeps each port and range once."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nodeport_lb import defaults
from nodeport_lb.model import NodePortRange

REPO = Path(__file__).resolve().parents[2]

ROLE_DEFAULTS = [
    ("haproxy", "nodeport_lb_healthz_port", defaults.PROXY_HEALTHZ_PORT),
    ("haproxy", "nodeport_lb_agent_check_port", defaults.AGENT_CHECK_PORT),
    ("node_proxy", "nodeport_lb_healthz_port", defaults.PROXY_HEALTHZ_PORT),
    ("node_proxy", "nodeport_lb_agent_check_port", defaults.AGENT_CHECK_PORT),
    ("node_proxy", "nodeport_lb_service_node_port_range", defaults.DEFAULT_NODE_PORT_RANGE),
    ("services", "nodeport_lb_service_node_port_range", defaults.DEFAULT_NODE_PORT_RANGE),
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
