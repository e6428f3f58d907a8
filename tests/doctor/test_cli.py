"""The command's contract: exit 0 / 1 / 2, never a traceback, --help that teaches."""

from __future__ import annotations

from pathlib import Path


def test_help_explains_the_checks_and_exit_status(run_cli) -> None:
    result = run_cli("doctor", "--help")
    assert result.returncode == 0
    for words in (
        "--kubeconfig FILE",
        "--manifests DIR",
        "--namespace",
        "--json",
        "exit status: 0",
    ):
        assert words in result.stdout


def test_a_source_is_required(run_cli) -> None:
    result = run_cli("doctor")
    assert (
        result.returncode == 2 and "one of the arguments --kubeconfig --manifests" in result.stderr
    )


def test_a_missing_directory_is_exit_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("doctor", "--manifests", str(tmp_path / "gone"))
    assert (result.returncode, result.stdout) == (2, "")
    assert "no such directory" in result.stderr and "Traceback" not in result.stderr


def test_a_file_instead_of_a_directory_is_exit_2(run_cli, tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("kind: Service\n")
    result = run_cli("doctor", "--manifests", str(tmp_path / "x.yaml"))
    assert result.returncode == 2 and "not a directory" in result.stderr


def test_a_clean_directory_is_exit_0_and_silent(run_cli, tmp_path: Path) -> None:
    result = run_cli("doctor", "--manifests", str(tmp_path), "--json")
    assert result.returncode == 0
    assert '"findings": []' in result.stdout


def test_hostile_objects_are_set_aside_not_crashed_on(run_cli, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"
        "spec: {ports: [{port: zero}], type: LoadBalancer}\n"
        "---\nkind: EndpointSlice\nmetadata: {name: s, labels: {kubernetes.io/service-name: x}}\n"
        "endpoints: [7]\n"
        "---\nkind: Pod\nmetadata: 5\n"
        "---\nkind: Pod\nmetadata: {name: p, labels: [a]}\n"
    )
    result = run_cli("doctor", "--manifests", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: Service default/x: the API server would refuse it" in result.stdout
    assert "EndpointSlice default/s: endpoints is not a list of objects" in result.stdout
    assert "Pod default/p: metadata.labels is not an object" in result.stdout
    assert "Pod without a name" in result.stdout
