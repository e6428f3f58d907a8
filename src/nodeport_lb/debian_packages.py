"""Which Debian packages a host lacks, asked of dpkg-query.

The roles' package step runs this one query over the host's connection as a plain command (no
Ansible module, so no Python started on the host): a host that has every package costs one
command and no apt run, whose cache update would count as a change.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable

# Debian Policy's package name: lower case letters, digits, + - and ., starting alphanumeric.
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# Ansible's apt module needs it; in check mode it cannot install it first to simulate.
APT_MODULE_PACKAGE = "python3-apt"
# dpkg-query's exit status when one of the packages is unknown to it (not an error here)
DPKG_QUERY_UNKNOWN_PACKAGE = 1


class PackageNameError(ValueError):
    pass


def package_names(names: Iterable[object]) -> list[str]:
    """The names, checked: each one goes into a command line."""
    checked = []
    for name in names:
        if not isinstance(name, str) or not PACKAGE_NAME.match(name):
            raise PackageNameError(f"{name!r} is not a Debian package name")
        checked.append(name)
    return checked


def query_command(names: Iterable[object]) -> str:
    """The dpkg-query command line for these packages and the apt module's own."""
    query = [
        "dpkg-query",
        "--show",
        "--showformat=${Package} ${db:Status-Abbrev}\\n",
        *package_names(names),
        APT_MODULE_PACKAGE,
    ]
    return shlex.join(query)


def missing_packages(dpkg_query_output: str, wanted: Iterable[str]) -> list[str]:
    """The packages of ``wanted`` not installed, from ``query_command``'s output: a package
    dpkg has never heard of prints no line at all; only status ``ii`` is installed."""
    installed = set()
    for line in dpkg_query_output.splitlines():
        name, _, status = line.partition(" ")
        if status.startswith("ii"):
            installed.add(name)
    return [package for package in wanted if package not in installed]
