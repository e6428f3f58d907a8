"""The haproxy role's plan filter: a play without the Services' ports fails with the advice."""

from __future__ import annotations

from importlib import util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

REPO = Path(__file__).resolve().parents[2]


def test_no_services_fails_with_the_play_to_run_first() -> None:
    spec = util.spec_from_file_location("filters", REPO / "plugins" / "filter" / "nodeport_lb.py")
    assert spec and spec.loader
    filters = util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    with pytest.raises(AnsibleFilterError, match=r"run site\.yml's Services play first"):
        filters.haproxy_plan(None, [], ["10.213.0.240"])
