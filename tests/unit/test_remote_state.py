"""The probes of nodeport_lb.remote_state, run by a real /bin/sh on real files: a path counts
as in place only when kind, content, mode, owner and group all match; names and values that
are no sysctl or unit names never reach a shell."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from nodeport_lb.remote_state import (
    StateError,
    WantedPath,
    kinds_probe,
    path_kinds,
    paths_as_wanted,
    paths_probe,
    sysctl_file_content,
    sysctl_setting,
    sysctl_values,
    unit_as_wanted,
    unit_probe,
)

OWNER = str(os.getuid())
GROUP = str(os.getgid())


def probe(paths: list[WantedPath], cwd: Path | None = None) -> list[bool]:
    shell = subprocess.run(
        ["/bin/sh", "-c", paths_probe(paths)], capture_output=True, text=True, check=True, cwd=cwd
    )
    return paths_as_wanted(shell.stdout, paths)


def wanted_file(path: Path, content: bytes, mode: str = "0644") -> WantedPath:
    return WantedPath.file(str(path), hashlib.sha1(content).hexdigest(), mode, OWNER, GROUP)


def test_a_file_in_place_and_what_makes_one_differ(tmp_path: Path) -> None:
    same, edited, loose, missing = (tmp_path / n for n in ("same", "edited", "loose", "missing"))
    for path in (same, edited, loose):
        path.write_bytes(b"a = 1\n")
        path.chmod(0o644)
    edited.write_bytes(b"a = 2\n")
    loose.chmod(0o666)
    wanted = [wanted_file(p, b"a = 1\n") for p in (same, edited, loose, missing)]
    assert probe(wanted) == [True, False, False, False]


def test_owner_by_name_or_id_and_a_wrong_owner(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    path.chmod(0o600)
    digest = hashlib.sha1(b"x").hexdigest()
    by_id = WantedPath.file(str(path), digest, "0600", OWNER, GROUP)
    by_name = WantedPath.file(str(path), digest, "0600", "root", "root")
    other = WantedPath.file(str(path), digest, "0600", "nobody", GROUP)
    expected_by_name = os.getuid() == 0 and os.getgid() == 0
    assert probe([by_id, by_name, other]) == [True, expected_by_name, False]


def test_directories_and_symlinks(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)
    target = tmp_path / "target"
    target.write_bytes(b"y")
    target.chmod(0o644)
    link = tmp_path / "link"
    link.symlink_to(target)
    wanted = [
        WantedPath.directory(str(directory), "0755", OWNER, GROUP),
        WantedPath.directory(str(directory), "0700", OWNER, GROUP),
        # a file where a directory is wanted, and a symlink to a file that is as wanted:
        # neither is in place (copy decides what a symlink becomes)
        WantedPath.directory(str(target), "0644", OWNER, GROUP),
        wanted_file(link, b"y"),
    ]
    assert probe(wanted) == [True, False, False, False]


def test_a_path_with_shell_characters_is_only_a_path(tmp_path: Path) -> None:
    hostile = tmp_path / "a'; touch pwned; echo '$(touch pwned2)"
    hostile.write_bytes(b"z")
    hostile.chmod(0o644)
    assert probe([wanted_file(hostile, b"z")], cwd=tmp_path) == [True]
    assert sorted(p.name for p in tmp_path.iterdir()) == [hostile.name]


def test_relative_paths_and_bad_modes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="absolute path"):
        paths_probe([WantedPath.file("etc/x", "0" * 40, "0644", "root", "root")])
    with pytest.raises(StateError, match="octal mode"):
        WantedPath.file(str(tmp_path / "x"), "0" * 40, "u+rw", "root", "root")


def test_output_with_lines_missing_counts_nothing_as_in_place(tmp_path: Path) -> None:
    wanted = [wanted_file(tmp_path / "a", b""), wanted_file(tmp_path / "b", b"")]
    assert paths_as_wanted("file 644 root root 0 0 " + "0" * 40, wanted) == [False, False]


def test_unit_answers() -> None:
    assert unit_as_wanted("enabled\nactive\n", enabled=True)
    assert not unit_as_wanted("disabled\nactive\n", enabled=True)
    assert unit_as_wanted("disabled\nactive\n", enabled=None)
    assert not unit_as_wanted("enabled\nactivating\n", enabled=True)
    assert not unit_as_wanted("enabled\n", enabled=True)
    assert unit_probe("haproxy") == "systemctl is-enabled haproxy; systemctl is-active haproxy"
    with pytest.raises(StateError):
        unit_probe("haproxy; reboot")


def test_sysctl_settings_are_checked_and_written_one_per_line() -> None:
    settings = [
        sysctl_setting("net.ipv4.ip_nonlocal_bind", "1"),
        sysctl_setting("net.ipv4.ip_local_port_range", "32768\t60999"),
    ]
    assert sysctl_file_content(settings) == (
        "net.ipv4.ip_nonlocal_bind = 1\nnet.ipv4.ip_local_port_range = 32768 60999\n"
    )
    # sysctl -n prints a range with a tab: folded as the wanted value is
    assert sysctl_values("1\n32768\t60999\n", 2) == ["1", "32768 60999"]
    assert sysctl_values("1\n", 2) is None
    for name, value in [("net.ipv4.x; reboot", "1"), ("kernel", "1"), ("net.ipv4.x", "1; id")]:
        with pytest.raises(StateError):
            sysctl_setting(name, value)


def test_path_kinds_after_symlinks(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("")
    (tmp_path / "to-dir").symlink_to(tmp_path / "dir")
    paths = [str(tmp_path / n) for n in ("dir", "file", "to-dir", "missing")]
    shell = subprocess.run(
        ["/bin/sh", "-c", kinds_probe(paths)], capture_output=True, text=True, check=True
    )
    assert path_kinds(shell.stdout, paths) == dict(
        zip(paths, ["directory", "file", "directory", "absent"], strict=True)
    )
    assert path_kinds("directory\n", paths) is None
    assert path_kinds("file\nfile\nfile\nlink\n", paths) is None
