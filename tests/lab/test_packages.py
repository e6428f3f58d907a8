"""Bare lab hosts: what a fresh Debian server has, an apt that knows only the lab's package
repository, a dry run of site.yml that changes nothing on them, a first real run that installs
what each role needs from that repository, and a dry run on the converged lab that finds
nothing to do.

Runs after test_lab_e2e and before test_site (file order, group "lab"): the `fresh` fixture
looks at the hosts before site.yml first runs on them (the `converged` fixture waits for it).
"""

from __future__ import annotations

import re

import pytest

from nodeport_lb.lab import apt_repo, layout

from .conftest import (
    Converged,
    Fresh,
    Lab,
    changed_files,
    hosts_files,
    installed_packages,
    lab_exec,
    site,
)

pytestmark = [pytest.mark.lab, pytest.mark.xdist_group("lab")]

# what the base used to carry and a fresh Debian server does not
NOT_ON_A_FRESH_SERVER = {
    "haproxy",
    "keepalived",
    "nftables",
    "curl",
    "conntrack",
    "socat",
    "python3-venv",
    "python3-pip",
    "python3-yaml",
    "python3-apt",
}


def test_fresh_hosts_have_what_a_fresh_server_has(fresh: Fresh) -> None:
    for host, packages in fresh.packages.items():
        assert {"systemd", "openssh-server", "python3"} <= packages, host
        # clients get the tools the tests drive from them at `lab up`, from the lab's repository
        expected = set(apt_repo.CLIENT_PACKAGES) if host.startswith("client") else set()
        assert packages & NOT_ON_A_FRESH_SERVER == expected & NOT_ON_A_FRESH_SERVER, host


def test_apt_on_every_host_knows_only_the_lab_repository(lab: Lab) -> None:
    for host in (h["name"] for h in lab.status["hosts"]):
        sources = lab_exec(host, "cat /etc/apt/sources.list; ls -A /etc/apt/sources.list.d")
        assert sources.stdout == f"{layout.APT_SOURCE}\n", host
        # what apt would fetch indexes from, after every configuration file is read
        targets = lab_exec(host, "apt-get indextargets --format '$(URI)'").stdout.split()
        assert targets and all(t.startswith(layout.PACKAGE_REPO_URL) for t in targets), targets


def test_a_dry_run_on_fresh_hosts_changes_nothing(fresh: Fresh) -> None:
    run = fresh.check_run
    assert run.returncode == 0, run.output[-4000:]
    recap = run.recap()
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in recap.values()), recap
    assert fresh.check_changed_files == {}
    # it says what the real run would do where apt cannot simulate it (no python3-apt yet)
    assert "apt cannot simulate installing haproxy, nftables" in run.output
    assert "agent is not installed yet" in run.output


def test_the_first_run_installed_each_roles_packages_from_the_lab(converged: Converged) -> None:
    for host in ("lb1", "lb2"):
        assert {"haproxy", "keepalived", "nftables"} <= installed_packages(host)
    for host in ("node1", "node2", "node3"):
        assert {"python3-venv", "nftables", "conntrack", "curl"} <= installed_packages(host)
    # every .deb came from the lab's package server, to every host that installs any
    log = apt_repo.SERVER_LOG.read_text()
    fetched_by = set(re.findall(r"^\S+ (\S+) \"GET /\S+\.deb ", log, re.MULTILINE))
    lab = {h["name"]: h["address"] for h in converged.lab.status["hosts"]}
    assert {lab[h] for h in ("lb1", "lb2", "node1", "node2", "node3")} <= fetched_by


def test_hosts_can_program_nftables_once_it_is_installed(converged: Converged) -> None:
    script = "nft add table inet nplb_probe && nft delete table inet nplb_probe"
    for host in ("lb1", "node1"):
        assert lab_exec(host, script, check=False).returncode == 0, host


def test_a_dry_run_on_the_converged_lab_finds_nothing_to_do(converged: Converged) -> None:
    before = hosts_files(converged.lab)
    run = site("--check", "--diff")
    converged.measured["site_check_converged_s"] = round(run.seconds, 1)
    assert run.returncode == 0, run.output[-4000:]
    changed = {host: c["changed"] for host, c in run.recap().items() if c["changed"]}
    assert changed == {}, run.output[-4000:]
    assert changed_files(before, hosts_files(converged.lab)) == {}
