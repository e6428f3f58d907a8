"""nodeport-lb's verification suite: what an operator expects of every host, in plain words.

Run it on its own:

    pytest --ansible-inventory=inventories/lab tests/infra       # every host of the inventory
    pytest --hosts='ansible://lb*' --ansible-inventory=INV tests/infra   # only some hosts

or as ``nodeport-lb verify -i INV``. Hosts come from the inventory groups ``nodes``, ``lbs``
and ``clients`` (end-to-end checks run from the controller when there is no client). Every
failure is one line per problem: ``host: object — expected …, found …``.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from nodeport_lb.loadbalancer import HAProxyPlan
from nodeport_lb.verify.control_plane import ControlPlane
from nodeport_lb.verify.expected import ExpectationError, expected_plan, unserved_node_ports
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.probes import Target, link_layer_address, run, target, tcp_connects

INVENTORY = pytest.StashKey[Inventory]()
ROLES = {"node": "nodes", "lb": "lbs", "client": "clients"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--inventory-fd",
        type=int,
        help="read the inventory from this file descriptor, as ansible-inventory --list prints "
        "it for --ansible-inventory, instead of running ansible-inventory (nodeport-lb verify "
        "runs it while pytest starts)",
    )


def pytest_configure(config: pytest.Config) -> None:
    source = config.getoption("ansible_inventory", None)
    sources = [source] if source else []
    fd = config.getoption("inventory_fd", None)
    if fd is None:
        config.stash[INVENTORY] = Inventory.load(sources)
        return
    with os.fdopen(fd) as listing:
        config.stash[INVENTORY] = Inventory.parse(sources, listing.read())


def _selected(config: pytest.Config, names: Iterable[str]) -> list[str]:
    """--hosts (testinfra's option) narrows the inventory: ansible://PATTERN[,…]."""
    given = config.getoption("hosts", None)
    if not given:
        return list(names)
    patterns = [h.split("://", 1)[-1].split("?", 1)[0] for h in given.split(",")]
    inventory = config.stash[INVENTORY]
    wanted = set()
    for pattern in patterns:
        wanted |= {h for h in inventory.hostvars if fnmatch.fnmatch(h, pattern)}
        for group in inventory.groups:
            if fnmatch.fnmatch(group, pattern):
                wanted |= set(inventory.hosts(group))
    return [n for n in names if n in wanted]


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # An inventory without cloud load balancers has nothing for the cloud checks to look at:
    # leave them out rather than report a skipped check on every bare-metal run.
    if collection_path.name == "test_infra_cloud.py":
        return not config.stash[INVENTORY].hosts("cloud_lb") or None
    return None


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture parameters
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The end-to-end checks last: the no-traffic probe, started with the session, then waits
    # out its timeout while the hosts' checks run.
    items.sort(key=lambda item: item.path.name == "test_infra_end_to_end.py")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    inventory = metafunc.config.stash[INVENTORY]
    for fixture, group in ROLES.items():
        if fixture in metafunc.fixturenames:
            names = inventory.hosts(group)
            if fixture == "client" and not names and inventory.hosts("lbs"):
                names = ["localhost"]  # end to end from the controller itself
            selected = _selected(metafunc.config, names)
            # the end-to-end checks test the path, not a host: --hosts that names no client
            # still runs them, from every client, rather than skipping them unseen
            names = selected if selected or fixture != "client" else names
            metafunc.parametrize(fixture, names, ids=names, indirect=True)
    if "cloud_lb" in metafunc.fixturenames:
        # cloud load balancers have no shell: checked from the controller, by name
        names = _selected(metafunc.config, inventory.hosts("cloud_lb"))
        metafunc.parametrize("cloud_lb", names, ids=names)
    if "vip" in metafunc.fixturenames:
        vips = [str(v) for v in inventory.var("nodeport_lb_vips") or []]
        metafunc.parametrize("vip", vips, ids=vips)


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    return request.config.stash[INVENTORY]


@pytest.fixture(scope="session", autouse=True)
def _open_connections(request: pytest.FixtureRequest, inventory: Inventory) -> None:
    """Open the SSH connection of every host the selected checks use, all at once: each host
    keeps one connection for the run, and its handshake would otherwise be paid in turn by the
    first check that reaches it. Then testinfra's first questions to a host (system type,
    init system: five commands), which its service and file modules ask once per host, are
    asked here too (one host at a time: testinfra caches the answers behind one lock)."""
    params = [
        getattr(getattr(item, "callspec", None), "params", {}) for item in request.session.items
    ]
    # str: not pytest's placeholder of an empty parameter set
    names = {p[f] for p in params for f in ROLES if isinstance(p.get(f), str)} - {"localhost"}

    def open_connection(name: str) -> None:
        # a host that cannot be reached fails the checks that use it, in their own words
        with contextlib.suppress(Exception):
            reached = target(inventory, name)
            run(reached, "true")
            if name not in inventory.hosts("clients"):  # the end-to-end checks use neither
                reached.host.service  # noqa: B018 (testinfra asks on access)

    with ThreadPoolExecutor(max_workers=max(len(names), 1)) as pool:
        list(pool.map(open_connection, sorted(names)))


@pytest.fixture(scope="session", autouse=True)
def no_traffic_probes(
    request: pytest.FixtureRequest, inventory: Inventory, _open_connections: None
) -> Iterator[dict[str, Future[set[tuple[str, int]]]]]:
    """Client -> its probe of the nodePorts that must not answer, started now. A dropped
    connection is only known as such when its timeout (1 s) is over: waited here, beside the
    hosts' checks, instead of in turn by the check."""
    clients = {
        item.callspec.params["client"]
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_nodes_without_pods_take_no_traffic"
        and hasattr(item, "callspec")
        # not pytest's placeholder of an empty parameter set (no client: the check skips)
        and isinstance(item.callspec.params["client"], str)
    }
    try:
        probes = sorted(unserved_node_ports(inventory, request.getfixturevalue("control_plane")))
    except Exception:  # the check itself reports it, when it asks for the control plane
        clients = set()
    with ThreadPoolExecutor(max_workers=max(len(clients), 1)) as pool:
        yield {c: pool.submit(tcp_connects, target(inventory, c), probes) for c in clients}


def _target(request: pytest.FixtureRequest) -> Target:
    return target(request.config.stash[INVENTORY], request.param)


@pytest.fixture(scope="session")
def node(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture(scope="session")
def lb(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture(scope="session")
def client(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture(scope="session")
def lbs(inventory: Inventory) -> list[Target]:
    return [target(inventory, name) for name in inventory.hosts("lbs")]


@pytest.fixture(scope="session")
def lb_macs(lbs: list[Target]) -> dict[str, str]:
    """Each load balancer's link-layer address towards the nodes (asked once)."""
    return {lb.name: link_layer_address(lb) for lb in lbs}


@pytest.fixture(scope="session")
def control_plane(inventory: Inventory) -> ControlPlane:
    return ControlPlane.load(inventory.var("nodeport_lb_store"))


@pytest.fixture(scope="session")
def plan(inventory: Inventory, control_plane: ControlPlane) -> HAProxyPlan:
    try:
        return expected_plan(inventory, control_plane)
    except (ExpectationError, ValueError) as error:
        pytest.fail(f"controller: inventory — {error}", pytrace=False)
