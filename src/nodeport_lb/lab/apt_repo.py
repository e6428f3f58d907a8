"""The lab's Debian package repository: where its bare hosts get what the roles install.

The hosts boot from a base with only what a fresh Debian server has, on a bridge with no route
out. `lab up` builds, once, a flat apt repository of the packages the roles and the lab itself
install there, with everything they need that the base lacks: apt-get on this machine, with
this machine's own sources and settings (proxies included), resolves them against the base's
dpkg status instead of this machine's and downloads them; dpkg-scanpackages indexes them. It is
cached under /var/cache/nodeport-lb, keyed by the package list and the base it completes.

A small HTTP server of the lab's on the controller's lab address serves it (its PID in the lab
state, ended by `lab down`); the hosts' only apt source is that server.
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import hashlib
import http.server
import os
import shutil
import signal
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path

from nodeport_lb import defaults
from nodeport_lb.lab import layout
from nodeport_lb.lab.rootfs import CACHE_DIR, SUITE
from nodeport_lb.lab.state import STATE_DIR
from nodeport_lb.lab.system import LabDaemon, LabError, run

# what the lab itself installs on its hosts from the repository: the test clients' tools, and
# what the kube-proxy stand-in runs on (a real kube-proxy brings nft in its image)
CLIENT_PACKAGES = ("curl", "netcat-openbsd")
KUBE_PROXY_PACKAGES = ("nftables", "python3-yaml")
PACKAGES = tuple(
    sorted(
        {
            *defaults.HAPROXY_PACKAGES,
            *defaults.KEEPALIVED_PACKAGES,
            *defaults.NODE_PROXY_PACKAGES,
            *defaults.APT_MODULE_PACKAGES,
            *CLIENT_PACKAGES,
            *KUBE_PROXY_PACKAGES,
        }
    )
)
# Bump when the way the repository is made changes, so cached ones are rebuilt.
RECIPE_VERSION = "1"
SERVER_LOG = STATE_DIR / "package-server.log"
PACKAGE_SERVER = LabDaemon("package server", "package-server", SERVER_LOG)


def repo_key(base: Path, packages: tuple[str, ...] = PACKAGES) -> str:
    text = "\n".join([SUITE, RECIPE_VERSION, base.name, *sorted(packages)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def repo_path(base: Path, packages: tuple[str, ...] = PACKAGES) -> Path:
    return CACHE_DIR / f"apt-{SUITE}-{repo_key(base, packages)}"


def ensure_repo(base: Path, packages: tuple[str, ...] = PACKAGES) -> tuple[Path, bool]:
    """The cached repository for this base, built first when missing. Returns (path, built_now)."""
    target = repo_path(base, packages)
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `lab up` at once build it once
        if (target / "Release").exists():
            return target, False
        building = target.with_name(target.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        try:
            _download(base, packages, building)
            _index(building)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        os.rename(building, target)  # only a finished repository is ever served
        return target, True


def _download(base: Path, packages: tuple[str, ...], into: Path) -> None:
    """The packages and what they need beyond the base, as .debs in ``into``."""
    work = into / ".apt"
    for sub in ("lists/partial", "cache/archives/partial"):
        (work / sub).mkdir(parents=True)
    # this machine's sources and settings, but lists, cache and "what is installed" of our own:
    # the base's dpkg status, so only what the base lacks is fetched
    options = [
        "-o",
        f"Dir::State::Lists={work / 'lists'}",
        "-o",
        f"Dir::Cache={work / 'cache'}",
        "-o",
        f"Dir::State::status={base / 'var/lib/dpkg/status'}",
        "-o",
        "APT::Install-Recommends=false",
    ]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", *options, "-qq", "update"], env=env)
    run(["apt-get", *options, "-qq", "-y", "--download-only", "install", *packages], env=env)
    for deb in (work / "cache" / "archives").glob("*.deb"):
        deb.rename(into / deb.name)
    shutil.rmtree(work)


def _index(directory: Path) -> None:
    """Packages, Packages.gz and an unsigned Release: a flat repository (`deb URL ./`)."""
    scan = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    if scan.returncode != 0:
        raise LabError(f"dpkg-scanpackages failed ({scan.returncode}): {scan.stderr.strip()}")
    index = scan.stdout.encode()
    (directory / "Packages").write_bytes(index)
    (directory / "Packages.gz").write_bytes(gzip.compress(index, mtime=0))
    lines = [
        "Origin: nodeport-lb lab",
        "Label: nodeport-lb lab",
        f"Date: {formatdate(usegmt=True)}",
        "SHA256:",
    ]
    for name in ("Packages", "Packages.gz"):
        data = (directory / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (directory / "Release").write_text("\n".join(lines) + "\n")


def package_names(directory: Path) -> set[str]:
    """The packages a repository holds (from its index)."""
    text = (directory / "Packages").read_text()
    lines = text.splitlines()
    return {line.split(":", 1)[1].strip() for line in lines if line.startswith("Package:")}


# --- the server -------------------------------------------------------------------------------


def start_server(directory: Path) -> int:
    """Serve ``directory`` on the controller's lab address in the background; return its PID."""
    address = (layout.CONTROLLER_ADDRESS, layout.PACKAGE_REPO_PORT)
    return PACKAGE_SERVER.start("--directory", str(directory), listens_on=address)


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        # one line per request, what a package fetch looks like from here
        print(f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}", flush=True)


def serve(directory: Path) -> int:
    """The server itself (`nodeport-lb lab package-server`), until SIGTERM."""
    if not (directory / "Release").is_file():
        raise LabError(f"{directory} is not a package repository of the lab's (no Release)")
    handler = functools.partial(_Handler, directory=str(directory))
    address = (layout.CONTROLLER_ADDRESS, layout.PACKAGE_REPO_PORT)
    try:
        server = http.server.ThreadingHTTPServer(address, handler)
    except OSError as exc:
        where = f"{address[0]}:{address[1]}"
        raise LabError(f"cannot serve the lab's packages on {where}: {exc}") from exc
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    with server:
        server.serve_forever()
    return 0
