"""The controller's wheelhouse runs the real pip, against a local directory of wheels made
here (PIP_NO_INDEX, PIP_FIND_LINKS: the tests reach no package index): what it fetches, when
it does not run pip at all, and that an unchanged wheelhouse packs the same bytes."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from nodeport_lb import wheelhouse
from nodeport_lb.wheelhouse import Target, WheelhouseError, fill

X86 = Target("3.11", "x86_64")
ARM = Target("3.11", "aarch64")


def make_wheel(directory: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel: metadata is all pip download reads."""
    dist = f"{name.replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    metadata = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
    metadata += [f"Requires-Dist: {r}\n" for r in requires]
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{dist}.dist-info/METADATA", "".join(metadata))
        wheel.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{dist}.dist-info/RECORD", "")
    return path


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local package index (a find-links directory) with the agent and its dependency."""
    where = tmp_path / "index"
    where.mkdir()
    make_wheel(where, "dep-a", "1.0")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(where))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    return where


@pytest.fixture
def agent(tmp_path: Path, index: Path) -> Path:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    return make_wheel(shipped, "nodeport-lb", "9.1", requires=("dep-a",))


def members(archive: str) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def test_the_first_fill_fetches_and_packs_the_agent_with_its_dependencies(
    tmp_path: Path, agent: Path
) -> None:
    result = fill(tmp_path / "wh", targets=[X86], wheel=agent)
    assert result["version"] == "9.1"
    assert result["fetched"] == ["3.11/x86_64"]
    assert result["archive_changed"] is True
    assert members(result["archive"]) == [
        "dep_a-1.0-py3-none-any.whl",
        "nodeport_lb-9.1-py3-none-any.whl",
    ]


def test_nothing_new_runs_no_pip_and_packs_the_same_bytes(tmp_path: Path, agent: Path) -> None:
    first = fill(tmp_path / "wh", targets=[X86], wheel=agent)
    packed = Path(first["archive"]).read_bytes()
    second = fill(tmp_path / "wh", targets=[X86], wheel=agent, pip=["false"])  # pip never runs
    assert second["fetched"] == [] and second["archive_changed"] is False
    assert Path(second["archive"]).read_bytes() == packed


def test_nodes_that_share_a_python_and_cpu_fetch_once(tmp_path: Path, agent: Path) -> None:
    targets = wheelhouse.targets_of(
        [
            {"python": {"version": {"major": 3, "minor": 11}}, "architecture": "x86_64"},
            {"python": {"version": {"major": 3, "minor": 11}}, "architecture": "x86_64"},
            {"python": {"version": {"major": 3, "minor": 11}}, "architecture": "aarch64"},
        ]
    )
    assert targets == ["3.11/aarch64", "3.11/x86_64"]
    result = fill(tmp_path / "wh", targets=[Target.parse(t) for t in targets], wheel=agent)
    assert result["fetched"] == targets


def test_a_missing_wheel_or_a_broken_record_fetches_again(tmp_path: Path, agent: Path) -> None:
    house = tmp_path / "wh"
    fill(house, targets=[X86], wheel=agent)
    (house / "dep_a-1.0-py3-none-any.whl").unlink()
    assert fill(house, targets=[X86], wheel=agent)["fetched"] == ["3.11/x86_64"]
    (house / wheelhouse.STATE_FILE).write_text("{not json")
    assert fill(house, targets=[X86], wheel=agent)["fetched"] == ["3.11/x86_64"]


def test_a_new_agent_wheel_is_a_new_archive(tmp_path: Path, agent: Path, index: Path) -> None:
    house = tmp_path / "wh"
    fill(house, targets=[X86], wheel=agent)
    make_wheel(index, "dep-b", "2.0")
    newer = make_wheel(agent.parent, "nodeport-lb", "9.1", requires=("dep-a", "dep-b"))
    result = fill(house, targets=[X86], wheel=newer)
    assert result["archive_changed"] is True and result["fetched"] == ["3.11/x86_64"]
    assert "dep_b-2.0-py3-none-any.whl" in members(result["archive"])


def test_a_failing_pip_is_an_error_with_its_output(tmp_path: Path, index: Path) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    agent = make_wheel(shipped, "nodeport-lb", "9.1", requires=("not-in-the-index",))
    with pytest.raises(WheelhouseError, match="not-in-the-index"):
        fill(tmp_path / "wh", targets=[X86], wheel=agent)


def test_the_source_digest_follows_the_source_and_not_the_bytecode(tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    module = tmp_path / "src" / "pkg" / "mod.py"
    module.write_text("A = 1\n")
    before = wheelhouse.source_digest(tmp_path)
    (tmp_path / "src" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    assert wheelhouse.source_digest(tmp_path) == before
    module.write_text("A = 2\n")
    assert wheelhouse.source_digest(tmp_path) != before


def test_a_target_that_is_not_one_is_refused_by_the_command_line(
    tmp_path: Path, agent: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--wheelhouse", str(tmp_path / "wh"), "--wheel", str(agent)]
    with pytest.raises(SystemExit) as exited:
        wheelhouse.main([*argv, "--target", "3.11/x86_64; rm -rf /"])
    assert exited.value.code == 2
    assert "is not PYTHON_VERSION/ARCH" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--extras", "[kube] --index-url=x"], "are not like [kube]"),
        (["--platform", "any --pre"], "is not like manylinux_2_28"),
    ],
)
def test_bad_extras_or_platforms_are_refused_before_pip(
    tmp_path: Path, agent: Path, args: list[str], message: str, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--wheelhouse", str(tmp_path / "wh"), "--wheel", str(agent), "--target", "3.11/x86_64"]
    assert wheelhouse.main([*argv, *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "wh.tar").exists()


def test_the_command_line_prints_the_result(
    tmp_path: Path, agent: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = ["--wheelhouse", str(tmp_path / "wh"), "--wheel", str(agent), "--target", "3.11/x86_64"]
    assert wheelhouse.main(argv) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "9.1"


def test_no_wheel_and_no_source_tree_names_both_fixes(tmp_path: Path) -> None:
    with pytest.raises(WheelhouseError) as refused:
        fill(tmp_path / "wh", targets=[X86], project_dir=tmp_path / "not-a-checkout")
    assert "make collection" in str(refused.value)
    assert "nodeport_lb_node_proxy_project_dir" in str(refused.value)
