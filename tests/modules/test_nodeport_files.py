"""nodeport_lb.core.nodeport_files, nodeport_sysctl and nodeport_paths through real
ansible-playbook runs over a local connection: what is in place is no change; what is not is
written by Ansible's own copy and file (validated, not at all in check mode, with a diff); a
bad value fails before anything is touched. nodeport_sysctl runs inside a network namespace
of its own, whose net.* settings are its alone. (nodeport_unit needs systemd: the lab's hosts
run it, and tests/lab/test_site.py undoes units by hand for the next run to put back.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netlib import Lab


def files_task(**args: object) -> dict[str, object]:
    return {"nodeport_lb.core.nodeport_files": args, "register": "result"}


def config(tmp_path: Path, content: str, **extra: object) -> dict[str, object]:
    return {"dest": str(tmp_path / "etc" / "app.conf"), "content": content, "mode": "0640", **extra}


def test_first_run_writes_second_changes_nothing(playbook, tmp_path: Path) -> None:
    task = files_task(
        directories=[{"path": str(tmp_path / "etc"), "mode": "0750"}],
        files=[config(tmp_path, "a = 1\n")],
    )
    first = playbook([task])
    assert first.returncode == 0, first.output
    assert (tmp_path / "etc" / "app.conf").read_text() == "a = 1\n"
    assert (tmp_path / "etc" / "app.conf").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "etc").stat().st_mode & 0o777 == 0o750
    assert first.results["result"]["changed_paths"] == [
        str(tmp_path / "etc"),
        str(tmp_path / "etc" / "app.conf"),
    ]
    second = playbook([task])
    assert second.returncode == 0, second.output
    assert second.results["result"]["changed"] is False
    assert second.recap("changed") == 0


def test_a_mode_changed_by_hand_is_put_back(playbook, tmp_path: Path) -> None:
    etc = {"path": str(tmp_path / "etc")}
    task = files_task(directories=[etc], files=[config(tmp_path, "a\n")])
    assert playbook([task]).returncode == 0
    (tmp_path / "etc" / "app.conf").chmod(0o666)
    run = playbook([task])
    assert run.results["result"]["changed_paths"] == [str(tmp_path / "etc" / "app.conf")]
    assert (tmp_path / "etc" / "app.conf").stat().st_mode & 0o777 == 0o640


def test_check_mode_and_diff_tell_without_writing(playbook, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.conf").write_text("a = 1\n")
    run = playbook([files_task(files=[config(tmp_path, "a = 2\n")])], "--check", "--diff")
    assert run.returncode == 0, run.output
    assert run.results["result"]["changed"] is True
    assert "-a = 1" in run.output and "+a = 2" in run.output
    assert (tmp_path / "etc" / "app.conf").read_text() == "a = 1\n"


def test_a_secret_file_shows_no_diff(playbook, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    task = files_task(files=[config(tmp_path, "pass = hunter2\n", secret=True)])
    run = playbook([task], "--diff")
    assert run.returncode == 0, run.output
    assert (tmp_path / "etc" / "app.conf").read_text() == "pass = hunter2\n"
    assert "hunter2" not in run.output


def test_a_file_that_fails_validation_leaves_the_old_one(playbook, tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.conf").write_text("good\n")
    later = {"dest": str(tmp_path / "etc" / "later"), "content": "x\n", "mode": "0644"}
    task = files_task(files=[config(tmp_path, "bad\n", validate="grep -q good %s"), later])
    run = playbook([task])
    assert run.returncode != 0
    assert f"{tmp_path / 'etc' / 'app.conf'}:" in run.output
    assert (tmp_path / "etc" / "app.conf").read_text() == "good\n"
    assert not (tmp_path / "etc" / "later").exists()


def test_a_controller_file_is_copied_as_is(playbook, tmp_path: Path) -> None:
    archive = tmp_path / "wheels.tar"
    archive.write_bytes(bytes(range(256)) * 64)
    task = files_task(files=[{"src": str(archive), "dest": str(tmp_path / "copy"), "mode": "0644"}])
    assert playbook([task]).returncode == 0
    assert (tmp_path / "copy").read_bytes() == archive.read_bytes()
    assert playbook([task]).results["result"]["changed"] is False
    archive.write_bytes(b"rebuilt")
    assert playbook([task]).results["result"]["changed_paths"] == [str(tmp_path / "copy")]
    assert (tmp_path / "copy").read_bytes() == b"rebuilt"


def test_a_relative_path_fails_before_anything_is_written(playbook, tmp_path: Path) -> None:
    task = files_task(
        directories=[{"path": str(tmp_path / "d")}],
        files=[{"dest": "etc/app.conf", "content": "x", "mode": "0644"}],
    )
    run = playbook([task])
    assert run.returncode != 0
    assert "give an absolute path" in run.output
    assert not (tmp_path / "d").exists()


@pytest.fixture
def netns_lab(tmp_path: Path) -> Iterator[tuple[Lab, str]]:
    lab = Lab(tmp_path)
    try:
        yield lab, lab.add_netns("sysctl")
    finally:
        lab.close()


def test_sysctl_now_and_at_boot_then_no_change(
    playbook, tmp_path: Path, netns_lab: tuple[Lab, str]
) -> None:
    lab, netns = netns_lab

    def nonlocal_bind() -> str:
        return lab.run(netns, "sysctl", "-n", "net.ipv4.ip_nonlocal_bind").stdout.strip()

    conf = tmp_path / "60-test.conf"
    task = {
        "nodeport_lb.core.nodeport_sysctl": {
            "settings": {"net.ipv4.ip_nonlocal_bind": 1},
            "sysctl_file": str(conf),
        },
        "register": "result",
    }
    assert nonlocal_bind() == "0"
    check = playbook([task], "--check", netns=netns)
    assert check.results["result"]["changed"] is True, check.output
    assert nonlocal_bind() == "0"
    assert not conf.exists()

    first = playbook([task], netns=netns)
    assert first.returncode == 0, first.output
    assert first.results["result"]["set_now"] == ["net.ipv4.ip_nonlocal_bind"]
    assert nonlocal_bind() == "1"
    assert conf.read_text() == "net.ipv4.ip_nonlocal_bind = 1\n"
    second = playbook([task], netns=netns)
    assert second.results["result"]["changed"] is False, second.output

    # set back by hand (a reboot without the file would do the same): only the value is set
    lab.run(netns, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=0")
    third = playbook([task], netns=netns)
    assert third.results["result"]["set_now"] == ["net.ipv4.ip_nonlocal_bind"]
    assert third.results["result"]["changed_paths"] == []


def test_a_hostile_sysctl_value_never_reaches_a_shell(playbook, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    task = {
        "nodeport_lb.core.nodeport_sysctl": {
            "settings": {"net.ipv4.ip_nonlocal_bind": f"1; touch {marker}"},
            "sysctl_file": str(tmp_path / "60-test.conf"),
        },
    }
    run = playbook([task])
    assert run.returncode != 0
    assert "is not a sysctl value" in run.output
    assert not marker.exists()
    assert not (tmp_path / "60-test.conf").exists()


def test_paths_tells_what_each_path_is(playbook, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "to-dir").symlink_to(tmp_path)
    paths = [str(tmp_path), str(tmp_path / "file"), str(tmp_path / "to-dir"), str(tmp_path / "no")]
    task = {"nodeport_lb.core.nodeport_paths": {"paths": paths}, "register": "result"}
    run = playbook([task], "--check")  # only looks: the same answer in check mode
    assert run.returncode == 0, run.output
    assert run.results["result"]["kinds"] == dict(
        zip(paths, ["directory", "file", "directory", "absent"], strict=True)
    )
    assert run.results["result"]["changed"] is False
    relative = playbook([{"nodeport_lb.core.nodeport_paths": {"paths": ["etc"]}}])
    assert relative.returncode != 0
    assert "give an absolute path" in relative.output
