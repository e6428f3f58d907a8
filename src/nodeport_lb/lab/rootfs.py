"""The base root filesystem every lab host boots from: Debian bookworm made by debootstrap,
with what a fresh Debian server has (systemd, sshd, python3) and an apt that knows only the
lab's own package repository.

Built once and cached under /var/cache/nodeport-lb/, keyed by a hash of the package list and the
recipe, so a second `lab up` reuses it and a changed list rebuilds it. Hosts never write to it:
each gets an overlayfs layer on top. The mirror is the one this machine's apt already uses
(or --mirror), so nothing about mirrors is ever written into the repository.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
from pathlib import Path

from nodeport_lb.lab import layout
from nodeport_lb.lab.system import LabError, run

SUITE = "bookworm"
CACHE_DIR = Path("/var/cache/nodeport-lb")
# What a fresh Debian server has, no more: the roles install what they need (from the lab's
# package repository, apt_repo.py), so every `lab up` -> site.yml goes through the install path.
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "iproute2",
    "iputils-ping",
    "procps",
)
# Bump when the customisation below changes, so cached bases are rebuilt.
RECIPE_VERSION = "2"
# Units that make no sense in a lab host (timers reaching for the network, a console login).
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "console-getty.service",
    "getty@tty1.service",
    "systemd-networkd-wait-online.service",
)


def base_key(packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join([SUITE, RECIPE_VERSION, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_path(packages: tuple[str, ...] = PACKAGES) -> Path:
    return CACHE_DIR / f"rootfs-{SUITE}-{base_key(packages)}"


def machine_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for the main archive."""
    candidates: list[str] = []
    list_files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in list_files:
        with contextlib.suppress(OSError):
            for line in path.read_text().splitlines():
                fields = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
                if len(fields) >= 3 and fields[0] == "deb":
                    candidates.append(_main_archive(fields[1], fields[2:3]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for stanza in re.split(r"\n\s*\n", path.read_text()):
                entry = _deb822_fields(stanza)
                if "deb" not in entry.get("types", "").split():
                    continue
                if entry.get("enabled", "yes").lower() == "no":
                    continue
                suites = entry.get("suites", "").split()
                for uri in entry.get("uris", "").split():
                    candidates.append(_main_archive(uri, suites))
    for mirror in candidates:
        if mirror:
            return mirror
    raise LabError("cannot find a Debian mirror in /etc/apt/sources.list{,.d}; pass --mirror URL")


def _deb822_fields(stanza: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def _main_archive(uri: str, suites: list[str]) -> str:
    """The URI when it serves the bookworm main archive (not security, not third parties)."""
    if any(s == SUITE or s == f"{SUITE}-updates" for s in suites) and uri.rstrip("/").endswith(
        "/debian"
    ):
        return uri
    return ""


def ensure_base(mirror: str | None, packages: tuple[str, ...] = PACKAGES) -> tuple[Path, bool]:
    """The cached base rootfs, built first when missing. Returns (path, built_now)."""
    target = base_path(packages)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "a+") as lock:
        # two `lab up` at once must not debootstrap into the same place
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "etc" / "os-release").exists():
            return target, False
        building = target.with_name(target.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                SUITE,
                str(building),
                mirror or machine_mirror(),
            ]
        )
        customise_base(building)
        os.rename(building, target)  # only a finished base is ever used
        return target, True


def customise_base(root: Path) -> None:
    """Make the base neutral: per-host identity (host keys, machine-id) is added per host."""
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc" / "machine-id").write_text("")
    (root / "etc" / "hostname").write_text("localhost\n")
    (root / "etc" / "resolv.conf").unlink(missing_ok=True)
    (root / "etc" / "resolv.conf").write_text("# the lab has no DNS\n")
    systemd = root / "etc" / "systemd" / "system"
    for unit in MASKED_UNITS:
        link = systemd / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    # apt knows only the lab's repository (the bridge has no route anywhere else): no lists
    # of the mirror debootstrap used, no other sources
    apt = root / "etc" / "apt"
    (apt / "sources.list").write_text(f"{layout.APT_SOURCE}\n")
    for extra in (apt / "sources.list.d").glob("*"):
        extra.unlink()
    lists = root / "var" / "lib" / "apt" / "lists"
    for entry in lists.glob("*"):
        if entry.is_file():
            entry.unlink()
    apt_cache = root / "var" / "cache" / "apt"
    for cached in [*apt_cache.glob("*.bin"), *apt_cache.glob("archives/*.deb")]:
        cached.unlink()
