"""Ask a host in one shell command whether its files, directories, units and kernel settings
are already as wanted (and what its paths are, and its facts), so that a run which changes
nothing starts no module on the host.

The probing actions (nodeport_files, _unit, _sysctl, _paths, _facts) use this on the
controller: one probe over the connection (coreutils, systemctl, sysctl and ip, which every
Debian host has), and Ansible's own copy, file and systemd_service only for what the probe
did not find as wanted. The probe only ever says "as wanted" when it is sure; anything it
cannot tell (a symlink, an unexpected line, a failed command) goes to Ansible's module, which
decides.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# what a probe line says of a path it cannot vouch for
ABSENT = "absent"

# sysctl names are dotted words (net.ipv4.conf.all.arp_announce); values are one or more
# words (a few take several numbers, e.g. net.ipv4.ip_local_port_range)
_SYSCTL_NAME = re.compile(r"[a-z0-9_]+(\.[A-Za-z0-9_-]+)+")
_SYSCTL_VALUE = re.compile(r"[A-Za-z0-9_.:-]+( [A-Za-z0-9_.:-]+)*")
# systemd unit names: what systemd itself accepts, without templates' empty instance
_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]+")


class StateError(ValueError):
    """A wanted state that must not reach a shell or a file: the task fails with it."""


@dataclass(frozen=True)
class WantedPath:
    """A file (with the SHA-1 of its wanted content) or a directory, owner, group and mode."""

    path: str
    kind: Literal["file", "directory"]
    mode: int
    owner: str = "root"
    group: str = "root"
    sha1: str | None = None

    @classmethod
    def file(cls, path: str, sha1: str, mode: str, owner: str, group: str) -> WantedPath:
        return cls(path, "file", parse_mode(mode), owner, group, sha1)

    @classmethod
    def directory(cls, path: str, mode: str, owner: str, group: str) -> WantedPath:
        return cls(path, "directory", parse_mode(mode), owner, group)


def parse_mode(mode: str) -> int:
    """An octal mode as Ansible's file modules take it ("0644"); symbolic modes are refused."""
    if not re.fullmatch(r"0?[0-7]{3,4}", str(mode)):
        raise StateError(f"mode {mode!r}: give an octal mode such as '0644'")
    return int(str(mode), 8)


def _absolute(path: str) -> str:
    if not path.startswith("/") or "\n" in path or "\0" in path:
        raise StateError(f"{path!r}: give an absolute path (one line)")
    return path


def paths_probe(paths: Sequence[WantedPath]) -> str:
    """One shell command that prints a line per path: its kind ("file", "directory" or
    "absent", which also stands for a symlink or anything else), octal mode, owner and group
    (names and ids), and for a file its SHA-1."""
    checks = []
    for wanted in paths:
        path = shlex.quote(_absolute(wanted.path))
        owners = f"\"$(stat -c '%a %U %G %u %g' -- {path})\""
        checks.append(
            f"if [ -L {path} ]; then echo {ABSENT}; "
            f'elif [ -f {path} ]; then echo file {owners} "$(sha1sum < {path} | cut -c1-40)"; '
            f"elif [ -d {path} ]; then echo directory {owners}; "
            f"else echo {ABSENT}; fi"
        )
    return "; ".join(checks)


def paths_as_wanted(stdout: str, paths: Sequence[WantedPath]) -> list[bool]:
    """For each path, whether the probe's line shows it exactly as wanted."""
    lines = stdout.splitlines()
    if len(lines) != len(paths):
        return [False] * len(paths)
    return [
        _line_as_wanted(line.split(), wanted) for line, wanted in zip(lines, paths, strict=True)
    ]


def _line_as_wanted(fields: list[str], wanted: WantedPath) -> bool:
    expected_fields = 7 if wanted.kind == "file" else 6
    if len(fields) != expected_fields or fields[0] != wanted.kind:
        return False
    mode, owner, group, uid, gid = fields[1:6]
    try:
        mode_matches = int(mode, 8) == wanted.mode
    except ValueError:
        return False
    return (
        mode_matches
        and wanted.owner in (owner, uid)
        and wanted.group in (group, gid)
        and (wanted.kind == "directory" or fields[6] == wanted.sha1)
    )


def unit_name(name: str) -> str:
    if not _UNIT_NAME.fullmatch(name):
        raise StateError(f"{name!r} is not a systemd unit name")
    return name


def unit_probe(name: str) -> str:
    """One shell command that prints whether the unit is enabled, then whether it is active
    (systemctl's own words; both exit non-zero for the other answers, hence no `&&`)."""
    unit = shlex.quote(unit_name(name))
    return f"systemctl is-enabled {unit}; systemctl is-active {unit}"


def unit_as_wanted(stdout: str, *, enabled: bool | None) -> bool:
    """Whether unit_probe's answer shows the unit running, and enabled or not as wanted
    (None: either)."""
    lines = stdout.split()
    if len(lines) != 2:
        return False
    unit_file_state, active_state = lines
    enabled_ok = enabled is None or (unit_file_state == "enabled") == enabled
    return enabled_ok and active_state == "active"


def sysctl_setting(name: str, value: str) -> tuple[str, str]:
    """A kernel parameter and its value, checked before either reaches a shell or a file."""
    value = " ".join(str(value).split())
    if not _SYSCTL_NAME.fullmatch(name):
        raise StateError(f"{name!r} is not a sysctl name (dotted, e.g. net.ipv4.ip_forward)")
    if not _SYSCTL_VALUE.fullmatch(value):
        raise StateError(f"{name}: {value!r} is not a sysctl value (words of [A-Za-z0-9_.:-])")
    return name, value


def sysctl_file_content(settings: Sequence[tuple[str, str]]) -> str:
    """A sysctl.d file that sets these parameters at boot."""
    return "".join(f"{name} = {value}\n" for name, value in settings)


def sysctl_probe(names: Sequence[str]) -> str:
    """One shell command that prints each parameter's running value on its own line."""
    return "sysctl -n " + " ".join(shlex.quote(name) for name in names)


def sysctl_values(stdout: str, count: int) -> list[str] | None:
    """The running values the probe printed (whitespace folded as sysctl_setting folds it),
    or None when its output does not have one line per parameter."""
    lines = stdout.splitlines()
    if len(lines) != count:
        return None
    return [" ".join(line.split()) for line in lines]


def kinds_probe(paths: Sequence[str]) -> str:
    """One shell command that prints, a line per path, what it is after symlinks: "file",
    "directory", "other" (a socket, a device...) or "absent"."""
    checks = []
    for raw in paths:
        path = shlex.quote(_absolute(raw))
        checks.append(
            f"if [ -d {path} ]; then echo directory; elif [ -f {path} ]; then echo file; "
            f"elif [ -e {path} ]; then echo other; else echo {ABSENT}; fi"
        )
    return "; ".join(checks)


def path_kinds(stdout: str, paths: Sequence[str]) -> dict[str, str] | None:
    """path -> kind from the probe's output, or None when it has not one known word a path."""
    kinds = stdout.split()
    if len(kinds) != len(paths) or not set(kinds) <= {"file", "directory", "other", ABSENT}:
        return None
    return dict(zip(paths, kinds, strict=True))


# the facts site.yml needs of a host, asked in one command instead of Ansible's setup module
# (which starts Python and runs its collectors, about a second of the host's CPU each time):
# the addresses (ip -j: iproute2's JSON), the CPU, and the version of the host's Python
FACTS_PYTHON_VERSION = "import sys; print(*sys.version_info[:3])"


def facts_probe(python: str) -> str:
    return (
        f"ip -j addr show && uname -m && {shlex.quote(python)} -c "
        f"{shlex.quote(FACTS_PYTHON_VERSION)}"
    )


def host_facts(stdout: str) -> dict[str, Any] | None:
    """The probe's answer as the part of Ansible's own facts the roles read, named as the
    setup module names them: ``interfaces``, one entry per interface (``macaddress``, ``ipv4``
    with address, netmask, network, prefix and broadcast, the other IPv4 addresses in
    ``ipv4_secondaries``), ``architecture`` and ``python.version``. None when the answer is
    not what the probe prints."""
    lines = stdout.strip().splitlines()
    if len(lines) != 3:
        return None
    try:
        links = json.loads(lines[0])
        major, minor, micro = (int(part) for part in lines[2].split())
    except ValueError:
        return None
    facts: dict[str, Any] = {
        "interfaces": [],
        "architecture": lines[1].strip(),
        "python": {"version": {"major": major, "minor": minor, "micro": micro}},
    }
    for link in links if isinstance(links, list) else []:
        name = link.get("ifname")
        if not isinstance(name, str):
            return None
        entry: dict[str, Any] = {"device": name}
        if link.get("address") and link.get("link_type") != "loopback":
            entry["macaddress"] = link["address"]
        addresses = [
            _ipv4_fact(info) for info in link.get("addr_info") or [] if info.get("family") == "inet"
        ]
        if addresses:
            entry["ipv4"] = addresses[0]
        if addresses[1:]:
            entry["ipv4_secondaries"] = addresses[1:]
        facts["interfaces"].append(name)
        facts[fact_key(name)] = entry
    return facts


def fact_key(interface: str) -> str:
    """How Ansible names an interface's facts (ansible_facts[KEY])."""
    return re.sub(r"[^A-Za-z0-9_]", "_", interface)


def _ipv4_fact(info: Mapping[str, Any]) -> dict[str, str]:
    interface = ipaddress.IPv4Interface(f"{info['local']}/{info['prefixlen']}")
    return {
        "address": str(interface.ip),
        "netmask": str(interface.netmask),
        "network": str(interface.network.network_address),
        "prefix": str(interface.network.prefixlen),
        "broadcast": str(info.get("broadcast") or ""),
    }
