"""`nodeport-lb service validate`: its exit codes and messages, run as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SEED_LB = """\
apiVersion: v1
kind: Service
metadata:
  name: python-lb
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  ports:
    - name: http
      port: 80
      nodePort: {node_port}
      protocol: TCP
      targetPort: 31000
  selector:
    app: python
"""

SEED_NODEPORT = """\
apiVersion: v1
kind: Service
metadata:
 name: test-python
spec:
 ports:
 - port: 31000
   protocol: TCP
   targetPort: 31000
   nodePort: 31000
 selector:
   app: python
 type: NodePort
"""


def write(tmp_path: Path, name: str, text: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return str(path)


def test_valid_seed_services_exit_0(run_cli, tmp_path: Path) -> None:
    files = [
        write(tmp_path, "lb.yaml", SEED_LB.format(node_port=31001)),
        write(tmp_path, "np.yaml", SEED_NODEPORT),
    ]
    result = run_cli("service", "validate", *files)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 Service(s) valid" in result.stdout


def test_json_manifest_is_accepted(run_cli, tmp_path: Path) -> None:
    import yaml

    doc = yaml.safe_load(SEED_LB.format(node_port=31001))
    result = run_cli("service", "validate", write(tmp_path, "lb.json", json.dumps(doc)))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("node_port", "code"), [(29999, 1), (30000, 0), (32767, 0), (32768, 1)])
def test_node_port_range_edges_exit_codes(run_cli, tmp_path: Path, node_port, code) -> None:
    result = run_cli(
        "service", "validate", write(tmp_path, "lb.yaml", SEED_LB.format(node_port=node_port))
    )
    assert result.returncode == code
    if code:
        assert (
            f"spec.ports[0].nodePort: Invalid value: {node_port}: provided port is not in the "
            "valid range. The range of valid ports is 30000-32767"
        ) in result.stdout
        assert "Traceback" not in result.stdout + result.stderr


def test_custom_node_port_range(run_cli, tmp_path: Path) -> None:
    path = write(tmp_path, "lb.yaml", SEED_LB.format(node_port=20000))
    assert run_cli("service", "validate", path).returncode == 1
    assert (
        run_cli("service", "validate", "--service-node-port-range", "20000-39999", path).returncode
        == 0
    )
    bad = run_cli("service", "validate", "--service-node-port-range", "oops", path)
    assert bad.returncode == 2 and "invalid node port range" in bad.stderr


def test_multi_document_file_with_one_bad_service(run_cli, tmp_path: Path) -> None:
    text = SEED_NODEPORT + "---\n" + SEED_LB.format(node_port=40000)
    result = run_cli("service", "validate", write(tmp_path, "both.yaml", text))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "Service default/python-lb: spec.ports[0].nodePort: Invalid value: 40000" in lines[0]


def test_one_line_per_error(run_cli, tmp_path: Path) -> None:
    text = SEED_LB.format(node_port=31001).replace("name: python-lb", "name: Python_LB")
    text = text.replace("externalTrafficPolicy: Local", "externalTrafficPolicy: Sometimes")
    text = text.replace("name: http", "name: HTTP")
    result = run_cli("service", "validate", write(tmp_path, "lb.yaml", text))
    assert result.returncode == 1
    fields = [line.split(": ")[2] for line in result.stdout.strip().splitlines()]
    assert fields == ["metadata.name", "spec.ports[0].name", "spec.externalTrafficPolicy"]


def test_an_allocator_refusal_comes_alone(run_cli, tmp_path: Path) -> None:
    """The API server allocates node ports before it validates: a refused port ends the
    request, and the other mistakes are not reported yet."""
    text = SEED_LB.format(node_port=29999).replace("name: python-lb", "name: Python_LB")
    result = run_cli("service", "validate", write(tmp_path, "lb.yaml", text))
    assert result.returncode == 1
    assert result.stdout.strip().splitlines() == [
        f"{tmp_path / 'lb.yaml'}: Service default/Python_LB: spec.ports[0].nodePort: Invalid "
        "value: 29999: provided port is not in the valid range. The range of valid ports is "
        "30000-32767"
    ]


def test_ports_conflicting_across_files(run_cli, tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", SEED_LB.format(node_port=31000))
    b = write(tmp_path, "b.yaml", SEED_NODEPORT)
    result = run_cli("service", "validate", a, b)
    assert result.returncode == 1
    assert (
        "spec.ports[0].nodePort: Invalid value: 31000: provided port is already allocated"
        in result.stdout
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "holds no Kubernetes object"),
        ("# only a comment\n", "holds no Kubernetes object"),
        ("kind: Service\nspec: [unclosed", "malformed YAML"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00binary\xff\xfe", "not a text file"),
        ("- a\n- b\n", "is a list, not a Kubernetes object"),
        ("just a string\n", "is a str, not a Kubernetes object"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
            "apps/v1 Deployment, not a v1 Service",
        ),
        ("apiVersion: v2\nkind: Service\n", "not a v1 Service"),
        (SEED_NODEPORT + "---\napiVersion: v1\nkind: ConfigMap\n", "document 2 is v1 ConfigMap"),
        ("a: &a [*a, *a]\n", "recursive YAML alias"),
        (
            "apiVersion: v1\nkind: Service\nmetadata: &m {name: x, labels: *m}\n",
            "recursive YAML alias",
        ),
    ],
)
def test_unusable_input_exit_2_without_traceback(run_cli, tmp_path: Path, content, reason) -> None:
    path = write(tmp_path, "input.yaml", content)
    result = run_cli("service", "validate", path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(path)
    assert reason in lines[0]


def test_missing_file_exit_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("service", "validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "nope.yaml: cannot read: No such file or directory" in result.stderr


def test_directory_instead_of_file_exit_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("service", "validate", str(tmp_path))
    assert result.returncode == 2 and "cannot read" in result.stderr


def test_reads_stdin(run_cli) -> None:
    assert run_cli("service", "validate", "-", stdin=SEED_NODEPORT).returncode == 0


def test_help_teaches(run_cli) -> None:
    result = run_cli("service", "validate", "--help")
    assert result.returncode == 0
    assert "exit status" in result.stdout and "examples" in result.stdout


DUAL_STACK = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ipFamilyPolicy: RequireDualStack
  ports:
    - port: 80
"""


def test_ip_families_follow_the_cluster(run_cli, tmp_path: Path) -> None:
    path = write(tmp_path, "web.yaml", DUAL_STACK)
    single = run_cli("service", "validate", path)
    assert single.returncode == 1
    assert single.stdout.strip() == (
        f'{path}: Service default/web: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": '
        "this cluster is not configured for dual-stack services"
    )
    dual = run_cli("service", "validate", "--service-ip-families", "IPv4,IPv6", path)
    assert dual.returncode == 0, dual.stdout
    bad = run_cli("service", "validate", "--service-ip-families", "IPv4,IPv4", path)
    assert bad.returncode == 2
    assert "--service-ip-families" in bad.stderr
