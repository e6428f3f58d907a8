"""Each finding on a manifest store holding its case, and silence on the clean counterpart."""

from __future__ import annotations

from nodeport_lb.doctor import DoctorOptions, FrontingLoadBalancer, diagnose, read_manifests
from nodeport_lb.doctor.spread import anti_affinity_stanza

from .objects import deployment, endpoint_slice, node, pods, service

NODES = [node("node1"), node("node2"), node("node3")]


def checks(directory, options: DoctorOptions | None = None) -> list[tuple[str, str]]:
    return [(f.object, f.check) for f in diagnose(read_manifests(directory), options)]


def web(per_node: dict[str, int], *, pod_spec=None, replicas=None, svc=None, nodes=NODES):
    svc = svc or service("web", annotations={})
    workload = deployment("web", replicas or sum(per_node.values()), pod_spec=pod_spec)
    running = pods("web-5d4f8", per_node, labels={"app": "web"}, pod_spec=pod_spec)
    return [svc, *workload, *running, endpoint_slice(svc, running), *nodes]


SPREAD = anti_affinity_stanza({"app": "web"})


def test_all_ready_pods_on_one_node(store) -> None:
    assert checks(store(web({"node2": 2}))) == [
        ("Deployment default/web", "no-spread"),
        ("Service default/web", "single-node"),
    ]


def test_one_replica_is_told_to_scale(store) -> None:
    [single] = [
        f
        for f in diagnose(read_manifests(store(web({"node2": 1}, pod_spec=SPREAD))))
        if f.check == "single-node"
    ]
    assert "runs 1 replica: scale it to 2 or more" in single.fix


def test_pods_on_two_nodes_with_anti_affinity_are_clean(store) -> None:
    assert checks(store(web({"node1": 1, "node2": 1}, pod_spec=SPREAD))) == []


def test_topology_spread_constraints_count_as_spreading(store) -> None:
    constraint = {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"app": "web"}},
            }
        ]
    }
    assert checks(store(web({"node1": 2}, pod_spec=constraint))) == [
        ("Service default/web", "single-node")
    ]


def test_a_one_node_cluster_has_nowhere_to_spread(store) -> None:
    assert checks(store(web({"node1": 2}, pod_spec=SPREAD, nodes=[node("node1")]))) == []


def test_uneven_beyond_the_ratio_and_not_at_it(store) -> None:
    assert ("Service default/web", "uneven-pods") in checks(
        store(web({"node1": 5, "node2": 2}), "a")
    )
    assert checks(store(web({"node1": 4, "node2": 2}, pod_spec=SPREAD), "b")) == []


def test_a_load_balancer_weighing_by_pods_takes_the_unevenness(store) -> None:
    directory = store(web({"node1": 6, "node2": 2}, pod_spec=SPREAD))
    assert checks(directory) == [("Service default/web", "uneven-pods")]
    weighted = DoctorOptions(front=FrontingLoadBalancer(weights_by_pods=True))
    assert checks(directory, weighted) == []
    gke = service("web", annotations={"networking.gke.io/weighted-load-balancing": "pods-per-node"})
    assert checks(store(web({"node1": 6, "node2": 2}, pod_spec=SPREAD, svc=gke), "gke")) == []


def test_bare_pods_get_the_stanza_on_the_service(store) -> None:
    svc = service("python-lb", selector={"app": "python"}, annotations={})
    running = pods("", {"node2": 1}, labels={"app": "python"})
    [finding] = diagnose(
        read_manifests(store([svc, *running, endpoint_slice(svc, running), *NODES]))
    )
    assert (finding.check, finding.object) == ("single-node", "Service default/python-lb")
    assert finding.patch is not None
    term = finding.patch["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ][0]["podAffinityTerm"]
    assert term["labelSelector"]["matchExpressions"][0] == {
        "key": "app",
        "operator": "In",
        "values": ["python"],
    }


def test_without_endpoint_slices_the_ready_pods_stand_in(store) -> None:
    objects = [o for o in web({"node2": 2}) if o["kind"] != "EndpointSlice"]
    assert ("Service default/web", "single-node") in checks(store(objects))
    not_ready = [o for o in objects]
    for obj in not_ready:
        if obj["kind"] == "Pod":
            obj["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert checks(store(not_ready, "not-ready")) == []


def test_statefulset_owner_is_followed(store) -> None:
    svc = service("db", annotations={})
    sts = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {}},
        },
    }
    running = pods("db", {"node1": 2}, labels={"app": "db"}, owner_kind="StatefulSet")
    assert checks(store([svc, sts, *running, endpoint_slice(svc, running), *NODES])) == [
        ("Service default/db", "single-node"),
        ("StatefulSet default/db", "no-spread"),
    ]


def ingress_nginx(policy: str, config: dict[str, str]) -> list[dict]:
    svc = service(
        "ingress-nginx-controller",
        namespace="ingress-nginx",
        policy=policy,
        selector={"app.kubernetes.io/name": "ingress-nginx"},
        annotations={},
    )
    controller = {
        "containers": [
            {
                "name": "controller",
                "image": "registry.k8s.io/ingress-nginx/controller:v1.11.0",
                "args": [
                    "/nginx-ingress-controller",
                    "--configmap=ingress-nginx/ingress-nginx-controller",
                ],
            }
        ]
    }
    running = pods(
        "",
        {"node1": 1, "node2": 1},
        namespace="ingress-nginx",
        labels={"app.kubernetes.io/name": "ingress-nginx"},
        pod_spec=controller,
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx"},
        "data": config,
    }
    return [svc, *running, endpoint_slice(svc, running), config_map, *NODES]


def test_cluster_policy_in_front_of_ingress_nginx_reading_client_addresses(store) -> None:
    found = diagnose(
        read_manifests(store(ingress_nginx("Cluster", {"use-forwarded-headers": "true"})))
    )
    assert [(f.severity, f.check) for f in found] == [("hint", "client-address")]
    assert "use-forwarded-headers: true" in found[0].message


def test_no_hint_without_the_signal_or_with_local(store) -> None:
    assert checks(store(ingress_nginx("Cluster", {"use-forwarded-headers": "false"}), "off")) == []
    assert checks(store(ingress_nginx("Local", {"use-proxy-protocol": "true"}), "local")) == []


def test_grace_shorter_than_the_cloud_detection_time(store) -> None:
    # Exoscale: 10s interval x 1 retry by default
    exo = service(
        "web",
        annotations={
            "service.beta.kubernetes.io/exoscale-loadbalancer-service-healthcheck-mode": "http",
            "service.beta.kubernetes.io/exoscale-loadbalancer-service-healthcheck-interval": "15s",
            "service.beta.kubernetes.io/exoscale-loadbalancer-service-healthcheck-retries": "2",
        },
    )
    short = {**SPREAD, "terminationGracePeriodSeconds": 20}
    found = diagnose(
        read_manifests(store(web({"node1": 1, "node2": 1}, pod_spec=short, svc=exo), "short"))
    )
    assert [(f.object, f.check) for f in found] == [("Deployment default/web", "termination-grace")]
    assert "20s" in found[0].message and "30s" in found[0].message
    assert found[0].patch == {"spec": {"template": {"spec": {"terminationGracePeriodSeconds": 35}}}}
    default_grace = web({"node1": 1, "node2": 1}, pod_spec=SPREAD, svc=exo)  # 30s >= 30s
    assert checks(store(default_grace, "default")) == []


def test_grace_against_the_load_balancer_in_front(store) -> None:
    directory = store(
        web({"node1": 1, "node2": 1}, pod_spec={**SPREAD, "terminationGracePeriodSeconds": 3})
    )
    assert checks(directory) == []  # nothing says how fast the load balancer in front is
    slow = DoctorOptions(front=FrontingLoadBalancer(interval=2, fall=3))
    assert checks(directory, slow) == [("Deployment default/web", "termination-grace")]
    fast = DoctorOptions(front=FrontingLoadBalancer(interval=1, fall=2))
    assert checks(directory, fast) == []


def test_a_file_that_does_not_parse_is_set_aside_and_reported(store) -> None:
    directory = store(web({"node1": 1, "node2": 1}, pod_spec=SPREAD))
    (directory / "broken.yaml").write_text("kind: [unclosed\n")
    found = diagnose(read_manifests(directory))
    assert [(f.check, f.severity) for f in found] == [("unreadable-object", "error")]
    assert found[0].object.endswith("broken.yaml")


def test_cluster_ip_and_cluster_policy_services_are_left_alone(store) -> None:
    plain = service("plain", type="ClusterIP", policy="", annotations={})
    del plain["spec"]["externalTrafficPolicy"]
    del plain["spec"]["ports"][0]["nodePort"]
    cluster = service("cluster", policy="Cluster", annotations={})
    running = pods("", {"node1": 1}, labels={"app": "cluster"})
    assert checks(store([plain, cluster, *running, endpoint_slice(cluster, running), *NODES])) == []


def test_endpoints_without_pod_objects_get_the_stanza_from_the_selector(store) -> None:
    svc = service("python-lb", selector={"app": "python"}, annotations={})
    running = pods("", {"node2": 1}, labels={"app": "python"})
    [finding] = diagnose(read_manifests(store([svc, endpoint_slice(svc, running)])))
    assert finding.check == "single-node" and finding.patch is not None
    assert "app=python" in finding.fix
