"""The same findings in the Ansible path: nodeport_service_info returns them per Service, and
site.yml's Services play prints them as warnings (failing only when told to)."""

from __future__ import annotations

from pathlib import Path

from tests.modules.conftest import REPO, playbook, run_playbook  # noqa: F401  (fixture)

from .objects import endpoint_slice, pods, service, write_store


def lab_like_store(directory: Path) -> Path:
    """python-lb's one pod on node2, as the lab starts it (EndpointSlice only, no Pod objects)."""
    svc = service("python-lb", selector={"app": "python"}, annotations={}, hcnp=None)
    running = pods("", {"node2": 1}, labels={"app": "python"})
    return write_store(directory, [endpoint_slice(svc, running)])


def test_info_module_returns_findings_per_service_and_warns(playbook, tmp_path: Path) -> None:  # noqa: F811
    store = write_store(tmp_path / "store", [])
    svc = service("python-lb", selector={"app": "python"}, annotations={})
    running = pods("", {"node2": 1}, labels={"app": "python"})
    write_store(store, [svc, endpoint_slice(svc, running)])
    run = playbook(
        [
            {
                "nodeport_service_info": {"store": {"path": str(store)}, "doctor": True},
                "register": "info",
            }
        ]
    )
    assert run.returncode == 0, run.output
    [found] = run.results["info"]["services"]
    assert [(f["object"], f["check"]) for f in found["findings"]] == [
        ("Service default/python-lb", "single-node")
    ]
    assert (
        "[WARNING]: doctor: warning: Service default/python-lb: all 1 ready endpoint(s) run on "
        "node2" in " ".join(run.output.split())
    )


def test_services_play_warns_and_fails_only_when_told(tmp_path: Path) -> None:
    store = lab_like_store(tmp_path / "store")
    extra = {"nodeport_lb_store": {"path": str(store)}}
    warned = run_playbook(REPO / "site.yml", "--tags", "services", extra_vars=extra)
    assert warned.returncode == 0, warned.output
    flat = " ".join(warned.output.split())
    assert (
        "doctor: warning: Service default/python-lb: all 1 ready endpoint(s) run on node2" in flat
    )
    failed = run_playbook(
        REPO / "site.yml",
        "--tags",
        "services",
        extra_vars={**extra, "nodeport_lb_doctor_fail": True},
    )
    assert failed.returncode != 0
    assert "nodeport-lb doctor found" in failed.output
