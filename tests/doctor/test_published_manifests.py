"""doctor on the two published walkthroughs' own manifests, and on their corrected copies."""

from __future__ import annotations

import shutil
from pathlib import Path

from nodeport_lb.doctor.spread import HOSTNAME_KEY

from .objects import deployment, endpoint_slice, node, pods, service

MANIFESTS = Path(__file__).parent / "manifests"
MODE = "service.beta.kubernetes.io/exoscale-loadbalancer-service-healthcheck-mode"


def test_exoscale_python_lb_without_mode_gets_the_tcp_check_named_with_its_fix(
    doctor, tmp_path: Path
) -> None:
    shutil.copy(MANIFESTS / "exoscale-python-lb.yaml", tmp_path)
    run = doctor("--manifests", str(tmp_path))
    assert run.code == 1
    lines = run.out.splitlines()
    assert lines[0].startswith("error: Service default/python-lb: Exoscale's load balancer ")
    assert "over TCP" in lines[0] and "always passes" in lines[0]
    assert f"fix: annotate {MODE}: http" in lines[0]
    assert f"{MODE}: http" in run.out.split("fix:")[1]  # the stanza to merge, under the line
    as_json = doctor("--manifests", str(tmp_path), "--json")
    assert as_json.checks() == [("Service default/python-lb", "tcp-health-check")]
    assert as_json.findings[0]["patch"]["metadata"]["annotations"][MODE] == "http"


def test_exoscale_python_lb_with_http_mode_is_clean(doctor, tmp_path: Path) -> None:
    text = (MANIFESTS / "exoscale-python-lb.yaml").read_text()
    fixed = text.replace("  annotations:\n", f"  annotations:\n    {MODE}: http\n", 1)
    assert fixed != text
    (tmp_path / "python-lb.yaml").write_text(fixed)
    run = doctor("--manifests", str(tmp_path))
    assert (run.code, run.out) == (0, "")


def my_service_cluster(pod_spec: dict | None, per_node: dict[str, int]) -> list[dict]:
    """my-service (eTP Local) in front of Deployment my-app's 8 pods on two nodes."""
    svc = service("my-service", selector={"app": "my-app"})
    workload = deployment("my-app", 8, labels={"app": "my-app"}, pod_spec=pod_spec)
    running = pods("my-app-5d4f8", per_node, labels={"app": "my-app"}, pod_spec=pod_spec)
    return [svc, *workload, *running, endpoint_slice(svc, running), node("node-a"), node("node-b")]


def test_my_service_six_and_two_pods_gets_uneven_load_and_the_anti_affinity_stanza(
    doctor, store
) -> None:
    run = doctor(
        "--manifests", str(store(my_service_cluster(None, {"node-a": 6, "node-b": 2}))), "--json"
    )
    assert run.code == 1
    assert sorted(run.checks()) == [
        ("Deployment default/my-app", "no-spread"),
        ("Service default/my-service", "uneven-pods"),
    ]
    uneven = next(f for f in run.findings if f["check"] == "uneven-pods")
    assert "6 on node-a, 2 on node-b" in uneven["message"] and "3.0x" in uneven["message"]
    stanza = next(f for f in run.findings if f["check"] == "no-spread")["patch"]
    term = stanza["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ][0]["podAffinityTerm"]
    # the workload's own labels, not the walkthrough's k8s-app example
    assert term["labelSelector"]["matchExpressions"] == [
        {"key": "app", "operator": "In", "values": ["my-app"]}
    ]
    assert term["topologyKey"] == HOSTNAME_KEY
    text = doctor(
        "--manifests", str(store(my_service_cluster(None, {"node-a": 6, "node-b": 2}), "again"))
    )
    assert "warning: Deployment default/my-app: has no podAntiAffinity" in text.out
    assert "          topologyKey: kubernetes.io/hostname" in text.out


def test_my_service_with_the_stanza_applied_and_pods_spread_is_clean(doctor, store) -> None:
    from nodeport_lb.doctor.spread import anti_affinity_stanza

    stanza = anti_affinity_stanza({"app": "my-app"})
    run = doctor("--manifests", str(store(my_service_cluster(stanza, {"node-a": 4, "node-b": 4}))))
    assert (run.code, run.out) == (0, "")


def test_my_service_as_published_is_refused_by_the_api_server(doctor, tmp_path: Path) -> None:
    """As printed, it sets externalTrafficPolicy on a ClusterIP Service."""
    (tmp_path / "my-service.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: my-service\nspec:\n"
        "  selector:\n    app: my-app\n  ports:\n    - protocol: TCP\n      port: 80\n"
        "      targetPort: 8080\n  externalTrafficPolicy: Cluster\n"
    )
    run = doctor("--manifests", str(tmp_path), "--json")
    assert run.code == 1
    assert run.checks() == [("Service default/my-service", "invalid-service")]
    assert "spec.externalTrafficPolicy" in run.findings[0]["message"]
