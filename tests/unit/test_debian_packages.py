"""The roles' package check: which packages dpkg-query says are not installed."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def filters() -> dict:
    spec = importlib.util.spec_from_file_location(
        "nplb_filters", REPO / "plugins/filter/nodeport_lb.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


def test_only_installed_packages_count() -> None:
    missing = filters()["nodeport_lb_missing_packages"]
    lines = ["haproxy ii ", "nftables rc ", "iproute2 ii ", "procps un ", "curl iHR"]
    wanted = ["haproxy", "nftables", "iproute2", "procps", "curl", "keepalived"]
    # removed with its configuration left (rc), never installed (un), half-installed (iH),
    # unknown to dpkg (no line at all): all missing
    assert missing(lines, wanted) == ["nftables", "procps", "curl", "keepalived"]
    assert missing([], ["haproxy"]) == ["haproxy"]
    assert missing(None, []) == []


def test_the_roles_query_reads_this_machines_dpkg() -> None:
    """The same dpkg-query line the roles run, on this machine (Debian): dpkg itself is there,
    a name no package has is not."""
    if not Path("/usr/bin/dpkg-query").exists():
        pytest.skip("no dpkg here")
    proc = subprocess.run(
        [
            "dpkg-query",
            "--show",
            "--showformat=${Package} ${db:Status-Abbrev}\\n",
            "dpkg",
            "nplb-none",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1  # the roles accept 1: one of them is unknown
    missing = filters()["nodeport_lb_missing_packages"]
    assert missing(proc.stdout.splitlines(), ["dpkg", "nplb-none"]) == ["nplb-none"]
