"""The nodeport_lb.core collection as an Ansible user gets it (tests.support.collection): its
modules, roles, filters and playbook by FQCN from a directory with no checkout."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.collection import Installed, build_and_install

REPO = Path(__file__).resolve().parents[2]
# the modules that read a manifest store or an API server (the store doc fragment)
STORE_MODULES = ("nodeport_lb.core.nodeport_service", "nodeport_lb.core.nodeport_service_info")
# the actions that ask the host first (a shell command), then run Ansible's own modules
PROBING_ACTIONS = tuple(
    f"nodeport_lb.core.nodeport_{name}"
    for name in ("packages", "files", "unit", "sysctl", "paths", "facts")
)
MODULES = (*STORE_MODULES, *PROBING_ACTIONS)
ROLES = ("services", "node_proxy", "haproxy", "keepalived")

pytestmark = pytest.mark.xdist_group("collection")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return build_and_install(tmp_path_factory.mktemp("collection"))


def test_make_collection_names_the_tarball_after_the_package_version(
    installed: Installed,
) -> None:
    import tomllib

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert installed.tarball.name == f"nodeport_lb-core-{version}.tar.gz"
    with tarfile.open(installed.tarball) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["version"] == version
    for expected in (
        "plugins/modules/nodeport_service.py",
        *(
            f"plugins/{kind}/{name.rpartition('.')[2]}.py"
            for name in PROBING_ACTIONS
            for kind in ("modules", "action")
        ),
        "plugins/filter/nodeport_lb.py",
        "plugins/plugin_utils/probing.py",
        "plugins/doc_fragments/nodeport_store.py",
        "plugins/module_utils/package.py",
        "playbooks/site.yml",
        "templates/haproxy.cfg.j2",
        "meta/runtime.yml",
        f"roles/node_proxy/files/nodeport_lb-{version}-py3-none-any.whl",
        *(f"roles/{role}/meta/argument_specs.yml" for role in ROLES),
    ):
        assert expected in names, expected
    assert not any("__pycache__" in n or n.startswith(".") for n in names)


def test_ansible_doc_by_fqcn_for_every_module_and_role(installed: Installed) -> None:
    for module in MODULES:
        result = installed.run("ansible-doc", "--json", module)
        assert result.returncode == 0, result.stderr
        assert "WARNING" not in result.stderr, result.stderr
        doc = json.loads(result.stdout)[module]["doc"]
        if module in STORE_MODULES:
            assert "store" in doc["options"]  # from the doc fragment, found by FQCN
            assert "kubeconfig" in doc["options"]["store"]["suboptions"]
        else:
            assert doc["options"]
    for role in ROLES:
        result = installed.run("ansible-doc", "-t", "role", "--json", f"nodeport_lb.core.{role}")
        assert result.returncode == 0, result.stderr
        entry = json.loads(result.stdout)[f"nodeport_lb.core.{role}"]
        assert entry["entry_points"]["main"]["short_description"]


def _doc_blocks(path: Path) -> dict[str, Any]:
    source = path.read_text()
    blocks = {}
    for name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        match = re.search(rf'^{name} = r"""(.*?)^"""', source, re.S | re.M)
        assert match, f"{path}: no {name}"
        blocks[name] = yaml.safe_load(match[1])
    return blocks


def _walk_options(options: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in (options or {}).items():
        yield name, spec
        yield from _walk_options(spec.get("suboptions") or {})


def test_module_docs_follow_the_collection_rules(installed: Installed) -> None:
    """What ansible-test's validate-modules asks of a collection's documentation (its own
    environment cannot be set up offline): authors as 'Name (@handle)', seealso and examples
    by FQCN, no no_log in documented options."""
    root = installed.collections / "ansible_collections" / "nodeport_lb" / "core"
    fragments = root / "plugins" / "doc_fragments" / "nodeport_store.py"
    fragment_doc = yaml.safe_load(
        re.search(r'DOCUMENTATION = r"""(.*?)"""', fragments.read_text(), re.S)[1]
    )
    for path in sorted((root / "plugins" / "modules").glob("*.py")):
        blocks = _doc_blocks(path)
        doc = blocks["DOCUMENTATION"]
        authors = doc["author"] if isinstance(doc["author"], list) else [doc["author"]]
        assert all(re.fullmatch(r"[^()]+ \(@[\w-]+\)", a) for a in authors), authors
        for entry in doc.get("seealso") or []:
            if "module" in entry:
                assert re.fullmatch(r"\w+\.\w+\.\w+", entry["module"]), entry  # by FQCN
        fragment_used = doc.get("extends_documentation_fragment")
        if fragment_used is not None:  # one of the collection's own, by FQCN
            namespace, collection, fragment = fragment_used.split(".")
            assert (namespace, collection) == ("nodeport_lb", "core"), fragment_used
            assert (root / "plugins" / "doc_fragments" / f"{fragment}.py").is_file(), fragment_used
        options = {**doc.get("options", {}), **fragment_doc["options"]}
        for name, spec in _walk_options(options):
            assert "no_log" not in spec, f"{path.name}: option {name} documents no_log"
        for task in blocks["EXAMPLES"]:
            used = [k for k in task if k.startswith("nodeport_") or k.endswith(path.stem)]
            assert all(k.startswith("nodeport_lb.core.") for k in used), (path.name, used)
        assert isinstance(blocks["RETURN"], dict)


def test_roles_call_the_collections_plugins_by_fqcn() -> None:
    """A role installed as a collection finds its filters only by FQCN: an unqualified
    nodeport_lb_* filter would work in the checkout and fail for every user."""
    from importlib import util

    spec = util.spec_from_file_location("filters", REPO / "plugins" / "filter" / "nodeport_lb.py")
    assert spec and spec.loader
    filters = util.module_from_spec(spec)
    spec.loader.exec_module(filters)
    names = set(filters.FilterModule().filters())
    unqualified = re.compile(r"\|\s*(" + "|".join(map(re.escape, names)) + r")\b")
    offenders = [
        f"{path.relative_to(REPO)}: {match[1]}"
        for path in [REPO / "site.yml", *sorted((REPO / "roles").rglob("*.yml"))]
        for match in unqualified.finditer(path.read_text())
    ]
    assert not offenders, offenders


def _play(installed: Installed, name: str, tasks: list[dict[str, Any]]) -> Path:
    path = installed.outside / f"{name}.yml"
    play = [
        {
            "name": name,
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": tasks,
        }
    ]
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def _recap(output: str, field: str) -> int:
    match = re.search(rf"localhost\s*:.*\b{field}=(\d+)", output)
    assert match, output
    return int(match[1])


def test_fqcn_module_from_outside_the_checkout_is_idempotent_and_checkable(
    installed: Installed,
) -> None:
    store = installed.outside / "store"
    service = {
        "nodeport_lb.core.nodeport_service": {
            "store": {"path": str(store)},
            "name": "python-lb",
            "type": "LoadBalancer",
            "external_traffic_policy": "Local",
            "selector": {"app": "python"},
            "ports": [{"name": "http", "port": 80, "target_port": 31000, "node_port": 31001}],
        },
        "register": "svc",
    }
    show = {"ansible.builtin.debug": {"msg": "hcnp={{ svc.health_check_node_port }}"}}
    play = _play(installed, "service", [{"name": "Service", **service}, {"name": "Show", **show}])

    dry = installed.run("ansible-playbook", str(play), "--check", "--diff")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert _recap(dry.stdout, "changed") == 1
    assert "+  healthCheckNodePort" in dry.stdout or "healthCheckNodePort" in dry.stdout
    assert not store.exists() or not any(store.iterdir()), "check mode wrote to the store"

    first = installed.run("ansible-playbook", str(play))
    assert first.returncode == 0, first.stdout + first.stderr
    assert _recap(first.stdout, "changed") == 1
    written = {p.name: p.read_bytes() for p in store.iterdir()}
    assert "service_default_python-lb.yaml" in written
    hcnp = re.search(r"hcnp=(\d+)", first.stdout)
    assert hcnp and 30000 <= int(hcnp[1]) <= 32767

    second = installed.run("ansible-playbook", str(play))
    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second.stdout, "changed") == 0
    assert {p.name: p.read_bytes() for p in store.iterdir()} == written

    info = _play(
        installed,
        "info",
        [
            {
                "name": "Info",
                "nodeport_lb.core.nodeport_service_info": {
                    "store": {"path": str(store)},
                    "name": "python-lb",
                },
                "register": "found",
            },
            {
                "name": "Show",
                "ansible.builtin.debug": {
                    "msg": "info={{ found.services[0].health_check_node_port }}"
                },
            },
        ],
    )
    result = installed.run("ansible-playbook", str(info))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"info={hcnp[1]}" in result.stdout


def test_fqcn_modules_without_the_package_say_how_to_get_it(installed: Installed) -> None:
    """Run by a Python without nodeport_lb, both modules fail with the message the
    collection's module_utils gives, whatever options the task has."""
    system_python = "/usr/bin/python3"
    has_package = subprocess.run([system_python, "-c", "import nodeport_lb"], check=False)
    if has_package.returncode == 0:
        pytest.skip("this machine's system Python has nodeport_lb")
    store = {"path": str(installed.outside / "no-store")}
    tasks = [
        {"name": "Service", "nodeport_lb.core.nodeport_service": {"store": store, "name": "a"}},
        {"name": "Info", "nodeport_lb.core.nodeport_service_info": {"store": store}},
    ]
    for task in tasks:
        play = _play(installed, "no-package", [task])
        play.write_text(play.read_text().replace("{{ ansible_playbook_python }}", system_python))
        result = installed.run("ansible-playbook", str(play))
        assert result.returncode != 0
        assert "the nodeport_lb package is not importable" in result.stdout, result.stdout
        assert "pip install nodeport-lb" in result.stdout


def test_services_role_by_fqcn_publishes_the_allocated_ports(installed: Installed) -> None:
    store = installed.outside / "role-store"
    applied_file = installed.outside / "applied.json"
    play = installed.outside / "role.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Services",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {
                        "nodeport_lb_store": {"path": str(store)},
                        "nodeport_lb_services": [
                            {
                                "name": "web",
                                "type": "LoadBalancer",
                                "external_traffic_policy": "Local",
                                "selector": {"app": "web"},
                                "ports": [{"name": "http", "port": 80, "target_port": 8080}],
                            }
                        ],
                    },
                    "roles": [{"role": "nodeport_lb.core.services"}],
                    "post_tasks": [
                        {
                            "name": "Save what the role published",
                            "ansible.builtin.copy": {
                                "dest": str(applied_file),
                                "content": "{{ nodeport_lb_applied_services | to_json }}",
                                "mode": "0644",
                            },
                        }
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    first = installed.run("ansible-playbook", str(play))
    assert first.returncode == 0, first.stdout + first.stderr
    applied = json.loads(applied_file.read_text())
    assert applied[0]["name"] == "web" and applied[0]["health_check_node_port"]
    second = installed.run("ansible-playbook", str(play))
    assert second.returncode == 0, second.stdout + second.stderr
    assert _recap(second.stdout, "changed") == 0
    assert json.loads(applied_file.read_text()) == applied


def test_node_proxy_role_uses_the_wheel_shipped_in_the_collection(installed: Installed) -> None:
    """No checkout to build from: the wheelhouse gets the collection's own agent wheel."""
    wheelhouse = installed.outside / "wheelhouse"
    play = installed.outside / "wheelhouse.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Wheelhouse",
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": True,
                    "vars": {
                        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                        "nodeport_lb_node_proxy_wheelhouse": str(wheelhouse),
                    },
                    "tasks": [
                        {
                            "name": "Build the wheelhouse",
                            "ansible.builtin.include_role": {
                                "name": "nodeport_lb.core.node_proxy",
                                "tasks_from": "wheelhouse.yml",
                            },
                        }
                    ],
                }
            ]
        )
    )
    result = installed.run("ansible-playbook", str(play))
    assert result.returncode == 0, result.stdout + result.stderr
    with tarfile.open(installed.tarball) as tar:
        (shipped,) = [n for n in tar.getnames() if n.endswith(".whl")]
        shipped_bytes = tar.extractfile(shipped).read()
    (wheel,) = wheelhouse.glob("nodeport_lb-*.whl")
    assert wheel.read_bytes() == shipped_bytes
    names = sorted(p.name.split("-")[0].lower() for p in wheelhouse.glob("*.whl"))
    assert "prometheus_client" in names and "ansible_core" not in names


def test_site_playbook_is_there_by_fqcn(installed: Installed) -> None:
    """nodeport_lb.core.site resolves from anywhere (its run on hosts is the lab's test)."""
    result = installed.run(
        "ansible-playbook", "nodeport_lb.core.site", "--list-tasks", "-i", "localhost,"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for task in ("nodeport_lb.core.services", "nodeport_lb.core.haproxy", "Run nodeport-lb verify"):
        assert task in result.stdout, result.stdout
