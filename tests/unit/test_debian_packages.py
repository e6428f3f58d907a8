"""The roles' package check: which packages dpkg-query says are not installed."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.debian_packages import (
    APT_MODULE_PACKAGE,
    DPKG_QUERY_UNKNOWN_PACKAGE,
    PackageNameError,
    missing_packages,
    query_command,
)


def test_only_installed_packages_count() -> None:
    output = "haproxy ii \nnftables rc \niproute2 ii \nprocps un \ncurl iHR\n"
    wanted = ["haproxy", "nftables", "iproute2", "procps", "curl", "keepalived"]
    # removed with its configuration left (rc), never installed (un), half-installed (iH),
    # unknown to dpkg (no line at all): all missing
    assert missing_packages(output, wanted) == ["nftables", "procps", "curl", "keepalived"]
    assert missing_packages("", ["haproxy"]) == ["haproxy"]
    assert missing_packages("", []) == []


@pytest.mark.parametrize(
    "name", ["haproxy; reboot", "$(touch x)", "Haproxy", "-y", "", "a", "python3 apt", None, 3]
)
def test_only_debian_package_names_reach_the_command_line(name: object) -> None:
    with pytest.raises(PackageNameError):
        query_command(["haproxy", name])


def test_the_query_also_asks_for_the_apt_modules_package() -> None:
    argv = shlex.split(query_command(["haproxy", "libc6", "g++", "python3.11"]))
    assert argv[:2] == ["dpkg-query", "--show"]
    assert argv[-5:] == ["haproxy", "libc6", "g++", "python3.11", APT_MODULE_PACKAGE]


def test_the_query_reads_this_machines_dpkg() -> None:
    """The same command line the roles run, through a shell as the connection runs it, on this
    machine (Debian): dpkg itself is there, a name no package has is not."""
    if not Path("/usr/bin/dpkg-query").exists():
        pytest.skip("no dpkg here")
    command = query_command(["dpkg", "nplb-none"])
    proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=False)
    assert proc.returncode == DPKG_QUERY_UNKNOWN_PACKAGE, proc.stderr
    assert missing_packages(proc.stdout, ["dpkg", "nplb-none"]) == ["nplb-none"]
