"""The node agent's wheelhouse on the controller: nodeport-lb's wheel and its runtime
dependencies as binary wheels for every Python and CPU the nodes have, packed into one
archive that the node_proxy role copies to each node (the nodes need no package index).

What a run with nothing new costs is the point, so pip runs only for what is missing:

- the agent's wheel is rebuilt only when its source changed (a digest of the files that go
  into it), or copied in when an installed collection ships it;
- the dependencies are fetched once per (Python, CPU) for all the nodes that share it, and
  not at all when an earlier run fetched the same requirement for it (recorded in a state
  file beside the wheels);
- the archive is rewritten only when its content changes, and is byte for byte the same
  otherwise (sorted members, fixed owners and times), so the copy to a node is a checksum
  comparison.

usage: python -m nodeport_lb.wheelhouse --wheelhouse DIR (--wheel FILE | --project-dir DIR)
           --target 3.11/x86_64 [--target ...] [--platform manylinux_2_28 ...] [--extras '[kube]']
       prints JSON: version, archive, wheels, built, fetched (the targets pip ran for)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = ".nodeport-lb-wheelhouse.json"
# the files of a checkout that go into the agent's wheel (setuptools, src layout)
SOURCE_FILES = ("pyproject.toml", "README.md")
SOURCE_DIRS = ("src",)
SKIPPED_PARTS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc", ".egg-info")
# a fixed date for the wheel's files, so an unchanged tree builds the same bytes
SOURCE_DATE_EPOCH = "315532800"
# wheel platforms for the nodes' glibc, without the CPU (pip download --platform)
DEFAULT_PLATFORMS = ("manylinux_2_28", "manylinux2014")
EXTRAS = re.compile(r"^(\[[a-z0-9_,-]+\])?$")


class WheelhouseError(Exception):
    pass


@dataclass(frozen=True, order=True)
class Target:
    """A node's Python (major.minor) and CPU, as pip download's --python-version and the
    architecture part of --platform take them."""

    python_version: str
    architecture: str

    @classmethod
    def parse(cls, text: str) -> Target:
        version, _, architecture = text.partition("/")
        major, _, minor = version.partition(".")
        if not (major.isdigit() and minor.isdigit() and architecture.replace("_", "").isalnum()):
            raise WheelhouseError(f"target {text!r} is not PYTHON_VERSION/ARCH (3.11/x86_64)")
        return cls(version, architecture)

    def __str__(self) -> str:
        return f"{self.python_version}/{self.architecture}"


def targets_of(facts: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct targets of some hosts' Ansible facts (python.version, architecture)."""
    found = set()
    for host_facts in facts:
        version = host_facts["python"]["version"]
        found.add(Target(f"{version['major']}.{version['minor']}", host_facts["architecture"]))
    return [str(t) for t in sorted(found)]


def source_digest(project_dir: Path) -> str:
    digest = hashlib.sha256()
    paths = [project_dir / name for name in SOURCE_FILES if (project_dir / name).is_file()]
    for top in SOURCE_DIRS:
        paths += [p for p in (project_dir / top).rglob("*") if p.is_file()]
    for path in sorted(paths):
        relative = path.relative_to(project_dir)
        if any(part in SKIPPED_PARTS or part.endswith(SKIPPED_SUFFIXES) for part in relative.parts):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


class Wheelhouse:
    def __init__(self, directory: Path, pip: Sequence[str] = (sys.executable, "-m", "pip")):
        self.directory = directory
        self.pip = list(pip)
        directory.mkdir(parents=True, exist_ok=True)
        state_path = directory / STATE_FILE
        try:
            self.state: dict[str, Any] = json.loads(state_path.read_text())
        except (OSError, ValueError):
            self.state = {}  # no record, or a broken one: fetch again rather than trust it
        self.state.setdefault("dependencies", {})

    def _save(self) -> None:
        path = self.directory / STATE_FILE
        path.with_suffix(".tmp").write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(path.with_suffix(".tmp"), path)

    def _pip(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        result = subprocess.run(
            [*self.pip, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if result.returncode != 0:
            raise WheelhouseError(f"pip {args[0]} failed:\n{result.stdout}{result.stderr}")

    def agent_wheel(self, *, wheel: Path | None, project_dir: Path | None) -> tuple[str, bool]:
        """The agent's wheel in the wheelhouse (file name) and whether it was built now."""
        if wheel is not None:
            if not wheel.is_file():
                raise WheelhouseError(f"no agent wheel at {wheel}")
            target = self.directory / wheel.name
            if not target.is_file() or file_digest(target) != file_digest(wheel):
                shutil.copyfile(wheel, target)
            return wheel.name, False
        assert project_dir is not None
        if not (project_dir / "pyproject.toml").is_file():
            raise WheelhouseError(
                f"no agent wheel given and no nodeport-lb source tree at {project_dir}: install "
                "the collection built by `make collection` (it ships the wheel), or point "
                "nodeport_lb_node_proxy_project_dir at a nodeport-lb checkout"
            )
        digest = source_digest(project_dir)
        known = self.state.get("agent")
        if known and known["source"] == digest and (self.directory / known["wheel"]).is_file():
            return known["wheel"], False
        with tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            self._pip(
                "wheel",
                "--quiet",
                "--no-deps",
                "--wheel-dir",
                scratch,
                str(project_dir),
                env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH},
            )
            built = sorted(Path(scratch).glob("nodeport_lb-*.whl"))
            if len(built) != 1:
                raise WheelhouseError(f"pip wheel made {[p.name for p in built]}")
            os.replace(built[0], self.directory / built[0].name)
        self.state["agent"] = {"source": digest, "wheel": built[0].name}
        self._save()
        return built[0].name, True

    def dependencies(
        self, agent: str, agent_digest: str, extras: str, target: Target, platforms: Sequence[str]
    ) -> tuple[list[str], bool]:
        """The dependency wheels of the agent for one target, and whether pip ran for them."""
        key = "|".join([agent_digest, extras, str(target), ",".join(platforms)])
        known = self.state["dependencies"].get(key)
        if known is not None and all((self.directory / name).is_file() for name in known):
            return known, False
        with tempfile.TemporaryDirectory(dir=self.directory) as scratch:
            self._pip(
                "download",
                "--quiet",
                "--only-binary=:all:",
                "--dest",
                scratch,
                "--find-links",
                str(self.directory),
                "--python-version",
                target.python_version,
                "--implementation",
                "cp",
                *(f"--platform={p}_{target.architecture}" for p in platforms),
                f"{self.directory / agent}{extras}",
            )
            names = sorted(p.name for p in Path(scratch).glob("*.whl") if p.name != agent)
            for name in names:
                os.replace(Path(scratch) / name, self.directory / name)
        self.state["dependencies"][key] = names
        self._save()
        return names, True

    def archive(self, names: Iterable[str]) -> tuple[Path, bool]:
        """``names`` packed as DIRECTORY.tar beside the wheelhouse; whether it changed."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in sorted(set(names)):
                data = (self.directory / name).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(SOURCE_DATE_EPOCH)
                tar.addfile(info, io.BytesIO(data))
        content = buffer.getvalue()
        path = self.directory.with_name(self.directory.name + ".tar")
        if path.is_file() and path.read_bytes() == content:
            return path, False
        path.with_suffix(".tmp").write_bytes(content)
        os.replace(path.with_suffix(".tmp"), path)
        return path, True


def fill(
    directory: Path,
    *,
    targets: Sequence[Target],
    wheel: Path | None = None,
    project_dir: Path | None = None,
    extras: str = "",
    platforms: Sequence[str] = DEFAULT_PLATFORMS,
    pip: Sequence[str] = (sys.executable, "-m", "pip"),
) -> dict[str, Any]:
    if (wheel is None) == (project_dir is None):
        raise WheelhouseError("give the agent's wheel or its source tree, not both")
    if not targets:
        raise WheelhouseError("no target: which Python and CPU do the nodes have?")
    if not EXTRAS.match(extras):
        raise WheelhouseError(f"extras {extras!r} are not like [kube]")
    for platform in platforms:
        if not platform.replace("_", "").isalnum():
            raise WheelhouseError(f"platform {platform!r} is not like manylinux_2_28")
    house = Wheelhouse(directory, pip)
    agent, built = house.agent_wheel(wheel=wheel, project_dir=project_dir)
    agent_digest = file_digest(directory / agent)
    wheels, fetched = [agent], []
    for target in sorted(set(targets)):
        names, ran = house.dependencies(agent, agent_digest, extras, target, platforms)
        wheels += names
        if ran:
            fetched.append(str(target))
    archive, changed = house.archive(wheels)
    return {
        "version": agent.split("-")[1],
        "archive": str(archive),
        "archive_changed": changed,
        "wheels": sorted(set(wheels)),
        "built": built,
        "fetched": fetched,
    }


def _target_argument(text: str) -> Target:
    try:
        return Target.parse(text)
    except WheelhouseError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nodeport_lb.wheelhouse",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--wheelhouse", type=Path, required=True, help="the cache directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=Path, help="the agent's wheel (as a collection ships it)")
    source.add_argument("--project-dir", type=Path, help="a nodeport-lb checkout to build from")
    parser.add_argument(
        "--target",
        dest="targets",
        action="append",
        type=_target_argument,
        required=True,
        help="a node's PYTHON_VERSION/ARCH, e.g. 3.11/x86_64 (repeat for several)",
    )
    parser.add_argument(
        "--platform",
        dest="platforms",
        action="append",
        help="a wheel platform without its CPU (repeat; default manylinux_2_28, manylinux2014)",
    )
    parser.add_argument("--extras", default="", help="the agent's extras, e.g. [kube]")
    try:
        args = parser.parse_args(argv)
        result = fill(
            args.wheelhouse,
            targets=args.targets,
            wheel=args.wheel,
            project_dir=args.project_dir,
            extras=args.extras,
            platforms=args.platforms or DEFAULT_PLATFORMS,
        )
    except WheelhouseError as error:
        print(f"nodeport-lb wheelhouse: {error}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
