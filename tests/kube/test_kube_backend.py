"""KubernetesBackend against an HTTP server that speaks the Kubernetes API (see conftest.py).

No API server can run on these machines. These tests run the real kubernetes client and the
real backend over real HTTP against kmock on 127.0.0.1, with reactions that play the API
server's part for Services (server-side apply, node-port allocation, Status errors). Nothing in
the kubernetes client or in nodeport-lb is patched or mocked; the only fake is the server at
the other end of the socket.
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from nodeport_lb.model import NodePortRange
from nodeport_lb.services import (
    BackendError,
    BackendUnavailable,
    InvalidService,
    prepare_service,
    service_facts,
)
from nodeport_lb.services.kube_backend import (
    FIELD_MANAGER,
    FieldConflict,
    KubernetesBackend,
    KubeSettings,
)

from .apiserver import FakeApiServer, Pki
from .conftest import TOKEN


def python_lb(**changes: Any) -> dict[str, Any]:
    """The example LoadBalancer Service, eTP Local, as the module would prepare it."""
    options = {
        "name": "python-lb",
        "namespace": "default",
        "type": "LoadBalancer",
        "selector": {"app": "python"},
        "ports": [{"name": "http", "port": 80, "target_port": 31000, "node_port": 31001}],
        "external_traffic_policy": "Local",
        **changes,
    }
    return prepare_service(NodePortRange(), options=options)


def test_python(**changes: Any) -> dict[str, Any]:
    options = {
        "name": "test-python",
        "namespace": "default",
        "type": "NodePort",
        "selector": {"app": "python"},
        "ports": [{"port": 8080, "node_port": 31000}],
        "external_traffic_policy": "Local",
        **changes,
    }
    return prepare_service(NodePortRange(), options=options)


test_python.__test__ = False  # a manifest factory, not a test


def backend_for(server: FakeApiServer, **options: Any) -> KubernetesBackend:
    # environ={} so the developer's own K8S_AUTH_* never leak into a test.
    return KubernetesBackend.from_settings(environ={}, host=server.url, **options)


def closed_port_url() -> str:
    """A loopback URL nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def kubeconfig(server_by_context: dict[str, str], current: str, token: str = TOKEN) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": ctx, "cluster": {"server": url}} for ctx, url in server_by_context.items()
        ],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [
            {"name": ctx, "context": {"cluster": ctx, "user": "operator"}}
            for ctx in server_by_context
        ],
        "current-context": current,
    }


# -- apply ----------------------------------------------------------------------------------


def test_create_is_a_server_side_apply_and_reads_the_allocated_ports_back(
    apiserver: FakeApiServer,
) -> None:
    manifest = python_lb()
    result = backend_for(apiserver).apply(manifest)

    (patch,) = apiserver.requests("PATCH")
    assert patch.url.path == "/api/v1/namespaces/default/services/python-lb"
    assert patch.headers["Content-Type"] == "application/apply-patch+yaml"
    assert patch.params == {"fieldManager": FIELD_MANAGER, "force": "false"}
    assert patch.data == manifest

    assert result.changed and result.before is None
    stored = apiserver.services[("default", "python-lb")]
    hcnp = stored["spec"]["healthCheckNodePort"]
    assert hcnp in NodePortRange()
    facts = service_facts(result.after)
    assert facts["node_ports"] == {"http": 31001}
    assert facts["health_check_node_port"] == hcnp
    assert result.after is not None
    assert result.after["metadata"]["uid"] == stored["metadata"]["uid"]
    assert "managedFields" not in result.after["metadata"]  # as kubectl get -o yaml shows it


def test_reapplying_the_same_service_changes_nothing(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    first = backend.apply(python_lb())
    second = backend.apply(python_lb())
    assert not second.changed
    assert second.before is not None and second.after is not None
    hcnp = first.after["spec"]["healthCheckNodePort"]
    assert second.after["spec"]["healthCheckNodePort"] == hcnp


def test_a_changed_label_is_a_change(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    result = backend.apply(python_lb(labels={"team": "edge"}))
    assert result.changed
    assert result.after["metadata"]["labels"] == {"team": "edge"}


def test_check_mode_is_a_dry_run_that_says_which_ports_the_run_will_allocate(
    apiserver: FakeApiServer,
) -> None:
    """The API server picks free ports at random, in a dry run as in the real one: check mode
    must not present the dry run's pick as the port the run will get."""
    result = backend_for(apiserver).apply(python_lb(), check_mode=True)

    (patch,) = apiserver.requests("PATCH")
    assert patch.params == {"fieldManager": FIELD_MANAGER, "force": "false", "dryRun": "All"}
    assert result.changed and result.before is None
    assert apiserver.services == {}
    facts = service_facts(result.after)
    assert facts["node_ports"] == {"http": 31001}  # asked for: the run gets it
    assert facts["health_check_node_port"] is None
    assert result.to_be_allocated == ["spec.healthCheckNodePort"]
    # and the diff shows no identity the dry run made up
    assert result.after is not None
    assert {"uid", "creationTimestamp", "resourceVersion"}.isdisjoint(result.after["metadata"])
    assert "clusterIP" not in result.after["spec"]


def test_check_mode_keeps_the_ports_a_service_already_holds(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    hcnp = backend.apply(python_lb()).after["spec"]["healthCheckNodePort"]
    changed = python_lb(
        ports=[
            {"name": "http", "port": 80, "target_port": 31000, "node_port": 31001},
            {"name": "https", "port": 443, "target_port": 31443},
        ]
    )
    result = backend.apply(changed, check_mode=True)
    assert result.changed
    assert service_facts(result.after)["health_check_node_port"] == hcnp
    assert service_facts(result.after)["node_ports"] == {"http": 31001}
    assert result.to_be_allocated == ["spec.ports[1].nodePort"]


def test_check_mode_on_an_applied_service_reports_no_change(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    stored = dict(apiserver.services)
    result = backend.apply(python_lb(), check_mode=True)
    assert not result.changed
    assert result.to_be_allocated == []
    assert apiserver.services == stored


# -- field ownership ------------------------------------------------------------------------


def apply_as(server: FakeApiServer, manager: str, manifest: dict[str, Any]) -> None:
    """Another tool's server-side apply (as Argo CD does), over the same real HTTP."""
    backend = backend_for(server)
    backend.core.patch_namespaced_service(
        manifest["metadata"]["name"],
        manifest["metadata"]["namespace"],
        manifest,
        field_manager=manager,
        _content_type="application/apply-patch+yaml",
    )
    backend.close()


def update_as(server: FakeApiServer, manager: str, name: str, patch: dict[str, Any]) -> None:
    """Another tool's merge patch, an Update (as Helm writes)."""
    backend = backend_for(server)
    backend.core.patch_namespaced_service(
        name, "default", patch, field_manager=manager,
        _content_type="application/merge-patch+json",
    )  # fmt: skip
    backend.close()


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_field_another_manager_owns_is_a_conflict_that_changes_nothing(
    apiserver: FakeApiServer, check_mode: bool
) -> None:
    apply_as(apiserver, "argocd-controller", python_lb(selector={"app": "python-v1"}))
    stored = copy.deepcopy(apiserver.services)
    with pytest.raises(FieldConflict) as conflict:
        backend_for(apiserver).apply(python_lb(), check_mode=check_mode)
    assert str(conflict.value).splitlines()[0] == (
        'Apply failed with 1 conflict: conflict with "argocd-controller": .spec.selector'
    )
    assert "force_conflicts" in str(conflict.value)
    assert apiserver.services == stored


def test_conflicts_with_an_update_manager_name_every_field(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    update_as(
        apiserver,
        "helm",
        "python-lb",
        {"spec": {"externalTrafficPolicy": "Cluster", "selector": {"app": "web"}}},
    )
    with pytest.raises(FieldConflict) as conflict:
        backend.apply(python_lb())
    assert str(conflict.value).splitlines()[:3] == [
        'Apply failed with 2 conflicts: conflicts with "helm" using v1:',
        "- .spec.externalTrafficPolicy",
        "- .spec.selector",
    ]
    assert apiserver.services[("default", "python-lb")]["spec"]["selector"] == {"app": "web"}


def test_force_conflicts_takes_the_fields_over(apiserver: FakeApiServer) -> None:
    apply_as(apiserver, "argocd-controller", python_lb(selector={"app": "python-v1"}))
    backend = backend_for(apiserver)
    result = backend.apply(python_lb(), force_conflicts=True)
    assert result.changed
    assert apiserver.requests("PATCH")[-1].params["force"] == "true"
    assert apiserver.services[("default", "python-lb")]["spec"]["selector"] == {"app": "python"}
    # the field is ours now: a plain re-apply conflicts no more
    assert not backend.apply(python_lb()).changed


def test_the_same_value_set_by_two_managers_is_no_conflict(apiserver: FakeApiServer) -> None:
    apply_as(apiserver, "argocd-controller", python_lb())
    assert not backend_for(apiserver).apply(python_lb()).changed


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_refusal_by_the_api_server_is_an_invalid_service_with_its_message(
    apiserver: FakeApiServer, check_mode: bool
) -> None:
    backend = backend_for(apiserver)
    backend.apply(test_python())
    taken = python_lb(name="other", ports=[{"name": "http", "port": 80, "node_port": 31000}])

    with pytest.raises(InvalidService) as refused:
        backend.apply(taken, check_mode=check_mode)

    assert refused.value.errors == [
        "spec.ports[0].nodePort: Invalid value: 31000: provided port is already allocated"
    ]
    assert refused.value.name == "other"
    assert str(refused.value) == (
        'Service "other" is invalid: '
        "spec.ports[0].nodePort: Invalid value: 31000: provided port is already allocated"
    )
    assert ("default", "other") not in apiserver.services


def test_a_status_without_causes_gives_its_message(apiserver: FakeApiServer) -> None:
    # A 422 the way admission webhooks answer: only a message, no field causes.
    apiserver.refuse_applies(
        422,
        "Invalid",
        'Service "python-lb" is invalid: denied by policy: eTP Local needs a team label',
    )
    with pytest.raises(InvalidService) as refused:
        backend_for(apiserver).apply(python_lb())
    assert refused.value.errors == ["denied by policy: eTP Local needs a team label"]


def test_other_api_errors_are_one_line_backend_errors(apiserver: FakeApiServer) -> None:
    message = (
        'services "python-lb" is forbidden: User "system:anonymous" cannot patch '
        'resource "services" in API group "" in the namespace "default"'
    )
    apiserver.refuse_applies(403, "Forbidden", message)
    with pytest.raises(BackendError) as failed:
        backend_for(apiserver).apply(python_lb())
    assert not isinstance(failed.value, InvalidService)
    assert str(failed.value) == (
        f"Kubernetes API server at {apiserver.url}: 403 Forbidden: {message}"
    )


# -- get / list / delete ---------------------------------------------------------------------


def test_get_answers_none_for_an_absent_service(apiserver: FakeApiServer) -> None:
    assert backend_for(apiserver).get("default", "nope") is None


def test_list_returns_the_services_of_every_namespace(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    backend.apply(test_python(namespace="shop"))

    services = backend.list()

    assert apiserver.requests("GET")[-1].url.path == "/api/v1/services"
    assert {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in services} == {
        ("default", "python-lb"),
        ("shop", "test-python"),
    }
    assert all(s["apiVersion"] == "v1" and s["kind"] == "Service" for s in services)


def test_list_follows_the_continue_token_across_pages(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    for name in ("a", "b", "c"):
        backend.apply(test_python(name=name, ports=[{"port": 8080}]))
    backend.list_page_size = 2

    names = [s["metadata"]["name"] for s in backend.list()]

    assert names == ["a", "b", "c"]
    pages = [r.params for r in apiserver.requests("GET")[-2:]]
    assert pages == [{"limit": "2"}, {"limit": "2", "continue": "2"}]


def test_an_answer_that_is_not_json_is_a_backend_error(apiserver: FakeApiServer) -> None:
    apiserver.handler["get"] ** 1 << b"<html>proxy login</html>"
    with pytest.raises(BackendError, match="answered something that is not JSON"):
        backend_for(apiserver).get("default", "python-lb")


def test_delete_removes_a_present_service(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    result = backend.delete("default", "python-lb")
    assert result.changed and result.after is None
    assert result.before is not None and result.before["metadata"]["name"] == "python-lb"
    assert apiserver.services == {}
    assert [r.url.path for r in apiserver.requests("DELETE")] == [
        "/api/v1/namespaces/default/services/python-lb"
    ]


def test_deleting_an_absent_service_changes_nothing(apiserver: FakeApiServer) -> None:
    result = backend_for(apiserver).delete("default", "python-lb")
    assert not result.changed and result.before is None


def test_delete_in_check_mode_only_reads(apiserver: FakeApiServer) -> None:
    backend = backend_for(apiserver)
    backend.apply(python_lb())
    result = backend.delete("default", "python-lb", check_mode=True)
    assert result.changed
    assert ("default", "python-lb") in apiserver.services
    assert apiserver.requests("DELETE") == []


# -- connection settings ---------------------------------------------------------------------


def test_kubeconfig_dict_reaches_the_server_with_its_token(
    secured_apiserver: FakeApiServer,
) -> None:
    config = kubeconfig({"lab": secured_apiserver.url}, current="lab")
    backend = KubernetesBackend.from_settings(environ={}, kubeconfig=config)
    assert backend.apply(python_lb()).changed
    assert secured_apiserver.requests("PATCH")[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_kubeconfig_path_and_context_pick_the_cluster(
    secured_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    config = kubeconfig({"dead": closed_port_url(), "lab": secured_apiserver.url}, current="dead")
    path.write_text(yaml.safe_dump(config))

    backend = KubernetesBackend.from_settings(environ={}, kubeconfig=str(path), context="lab")

    assert backend.host == secured_apiserver.url
    assert backend.get("default", "python-lb") is None
    assert secured_apiserver.requests("GET")


def test_k8s_auth_environment_reaches_the_server(
    secured_apiserver: FakeApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("K8S_AUTH_HOST", secured_apiserver.url)
    monkeypatch.setenv("K8S_AUTH_API_KEY", TOKEN)
    monkeypatch.setenv("K8S_AUTH_VERIFY_SSL", "no")
    backend = KubernetesBackend.from_settings()
    assert backend.configuration.verify_ssl is False
    assert backend.apply(python_lb()).changed
    assert secured_apiserver.requests("PATCH")[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_k8s_auth_kubeconfig_and_context_from_the_environment(
    secured_apiserver: FakeApiServer, tmp_path: Path
) -> None:
    path = tmp_path / "kubeconfig"
    config = kubeconfig({"dead": closed_port_url(), "lab": secured_apiserver.url}, current="dead")
    path.write_text(yaml.safe_dump(config))
    environ = {"K8S_AUTH_KUBECONFIG": str(path), "K8S_AUTH_CONTEXT": "lab"}
    backend = KubernetesBackend.from_settings(environ=environ)
    assert backend.list() == []


def test_given_settings_win_over_the_environment(apiserver: FakeApiServer) -> None:
    environ = {"K8S_AUTH_HOST": closed_port_url()}
    backend = KubernetesBackend.from_settings(environ=environ, host=apiserver.url)
    assert backend.get("default", "python-lb") is None


def test_with_nothing_given_the_default_kubeconfig_is_used(
    apiserver: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)  # not in a pod
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(kubeconfig({"lab": apiserver.url}, current="lab")))
    monkeypatch.setenv("KUBECONFIG", str(path))
    backend = KubernetesBackend.from_settings(environ={})
    assert backend.host == apiserver.url
    assert backend.list() == []


def test_with_nothing_given_and_nowhere_to_look_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(BackendUnavailable) as unusable:
        KubernetesBackend.from_settings(environ={})
    assert "none given (kubeconfig, context, host or K8S_AUTH_*)" in str(unusable.value)
    assert "\n" not in str(unusable.value)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"kubeconfig": "/nonexistent/kubeconfig"}, "kubeconfig /nonexistent/kubeconfig does not"),
        (
            {"kubeconfig": kubeconfig({"lab": "http://127.0.0.1:1"}, "lab"), "context": "prod"},
            "prod",
        ),
        ({"hots": "http://127.0.0.1:1"}, "unknown Kubernetes connection setting(s) hots"),
        ({"host": "http://127.0.0.1:1", "validate_certs": "maybe"}, "'maybe' is not a boolean"),
    ],
)
def test_unusable_settings_are_a_clear_error(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(BackendUnavailable) as unusable:
        KubernetesBackend.from_settings(environ={}, **options)
    assert expected in str(unusable.value)
    assert "\n" not in str(unusable.value)


def test_settings_resolve_field_by_field() -> None:
    settings = KubeSettings.resolve(
        {"context": "lab"}, {"K8S_AUTH_CONTEXT": "prod", "K8S_AUTH_SSL_CA_CERT": "/ca.crt"}
    )
    assert settings.context == "lab" and settings.ca_cert == "/ca.crt"


def test_tls_settings_from_the_environment_reach_an_https_server(
    tls_apiserver: FakeApiServer, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tls_apiserver.url.startswith("https://127.0.0.1:")
    for name, value in {
        "K8S_AUTH_HOST": tls_apiserver.url,
        "K8S_AUTH_API_KEY": TOKEN,
        "K8S_AUTH_SSL_CA_CERT": str(pki.ca_cert),
        "K8S_AUTH_CERT_FILE": str(pki.client_cert),
        "K8S_AUTH_KEY_FILE": str(pki.client_key),
    }.items():
        monkeypatch.setenv(name, value)
    assert KubernetesBackend.from_settings().apply(python_lb()).changed


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # expected
def test_validate_certs_false_accepts_an_unknown_server_certificate(
    tls_apiserver: FakeApiServer, pki: Pki
) -> None:
    backend = KubernetesBackend.from_settings(
        environ={},
        host=tls_apiserver.url,
        api_key=TOKEN,
        validate_certs=False,
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
    )
    assert backend.get("default", "python-lb") is None


def test_an_untrusted_server_certificate_is_a_one_line_error(
    tls_apiserver: FakeApiServer, pki: Pki
) -> None:
    backend = KubernetesBackend.from_settings(
        environ={},
        host=tls_apiserver.url,
        api_key=TOKEN,
        client_cert=str(pki.client_cert),
        client_key=str(pki.client_key),
    )
    with pytest.raises(BackendUnavailable) as untrusted:
        backend.get("default", "python-lb")
    message = str(untrusted.value)
    assert message.startswith(f"cannot reach the Kubernetes API server at {tls_apiserver.url}: ")
    assert "certificate verify failed" in message and "\n" not in message


def test_a_wrong_token_is_a_backend_error(secured_apiserver: FakeApiServer) -> None:
    backend = backend_for(secured_apiserver, api_key="wrong")
    with pytest.raises(BackendError, match="401 Unauthorized: Unauthorized"):
        backend.get("default", "python-lb")


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.get("default", "python-lb"),
        lambda b: b.list(),
        lambda b: b.apply(python_lb()),
        lambda b: b.delete("default", "python-lb"),
    ],
    ids=["get", "list", "apply", "delete"],
)
def test_a_server_that_is_not_there_is_a_one_line_error_naming_it(call: Any) -> None:
    url = closed_port_url()
    backend = KubernetesBackend.from_settings(environ={}, host=url)
    with pytest.raises(BackendUnavailable) as unreachable:
        call(backend)
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the Kubernetes API server at {url}: ")
    assert "Connection refused" in message
    assert "\n" not in message and "object at 0x" not in message
