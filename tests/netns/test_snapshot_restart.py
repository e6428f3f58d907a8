"""A restart from the snapshot of the last sync, as the systemd unit runs the agent (real
agents, real nftables): the old table serves throughout, a store file changed while the agent
was down is read again, a table that is not the snapshot's is replaced whole, and a snapshot
that does not check out is ignored for a whole read."""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Iterator

import pytest

from tests.netns.conftest import SeedLab
from tests.support.netlib import http_get, scrape_metrics, tcp_connect, wait_for
from tests.support.objects import endpoint
from tests.support.seed import ADDRESSES, HCNP, PODS, python_lb, seed_objects

pytestmark = [pytest.mark.netns, pytest.mark.xdist_group("netns")]

NODE1, NODE2, CLIENT = ADDRESSES["node1"], ADDRESSES["node2"], ADDRESSES["client"]
POD_B = PODS["pod-b"][1]


@pytest.fixture(scope="module")
def seed(seed_lab: SeedLab) -> Iterator[SeedLab]:
    seed_lab.extra_agent_args = (
        "--snapshot-file",
        str(seed_lab.lab.workdir / "snapshot-{node}"),
    )
    seed_lab.publish(*seed_objects())
    for node in ("node1", "node2"):
        seed_lab.start_agent(node)
    wait_for(lambda: hcnp(seed_lab, "node2") == 200)
    yield seed_lab


def hcnp(seed: SeedLab, node: str) -> int:
    return http_get(seed.ns("client"), ADDRESSES[node], HCNP)[0]


def snapshot(seed: SeedLab, node: str):
    return seed.lab.workdir / f"snapshot-{node}"


def log_text(seed: SeedLab, node: str) -> str:
    return (seed.lab.workdir / f"agent-{node}.log").read_text(errors="replace")


def restart(seed: SeedLab, node: str, while_stopped=lambda: None) -> str:
    """SIGTERM (the agent writes its snapshot as it stops), ``while_stopped``, start again;
    returns what the new agent logged up to its first sync."""
    seed.lab.stop(seed.agents[node], signal.SIGTERM)
    assert snapshot(seed, node).exists()
    while_stopped()
    mark = len(log_text(seed, node))
    seed.start_agent(node)
    synced = ("kubeproxy_sync_proxy_rules_last_timestamp_seconds", frozenset())
    wait_for(lambda: scrape_metrics(seed.ns(node)).get(synced, 0) > 0, timeout=15)
    # the hcnp listener opens just after the first sync: started means answering (200 or 503)
    wait_for(lambda: hcnp(seed, node) in (200, 503))
    return log_text(seed, node)[mark:]


def served(seed: SeedLab, port: int = 31001) -> dict:
    status, _, body = http_get(seed.ns("client"), NODE2, port)
    assert status == 200
    return json.loads(body)


def test_a_restart_starts_from_the_snapshot_and_the_old_table_serves_meanwhile(
    seed: SeedLab,
) -> None:
    outcomes: list[str] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            try:
                tcp_connect(seed.ns("client"), NODE2, 31001, 1.0).close()
                outcomes.append("open")
            except OSError as exc:
                outcomes.append(repr(exc))
            stop.wait(0.02)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        logged = restart(seed, "node2")
    finally:
        stop.set()
        thread.join()
    assert "started from the snapshot of 2 Services" in logged
    # stopped cleanly: the table is what the snapshot says, and is not replaced
    assert "the table is the one the snapshot describes" in logged
    assert "full sync of" not in logged
    assert outcomes and set(outcomes) == {"open"}
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}
    assert hcnp(seed, "node2") == 200


def test_a_store_file_changed_while_the_agent_was_down_is_read_again(seed: SeedLab) -> None:
    def move_the_pod() -> None:  # python-lb's pod moves to node1
        seed.publish(*python_lb(endpoint(POD_B, "node1")))

    try:
        logged = restart(seed, "node2", move_the_pod)
        assert "started from the snapshot" in logged
        assert "the table is the one the snapshot describes" in logged
        wait_for(lambda: hcnp(seed, "node2") == 503)  # nothing local any more
        wait_for(lambda: hcnp(seed, "node1") == 200)
        assert served(seed, 31000)["pod"] == "pod-a"  # test-python, unchanged
    finally:
        seed.publish(*python_lb())
    wait_for(lambda: hcnp(seed, "node2") == 200)
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}
    # the changes since were partial syncs: each one's generation is what the next snapshot
    # finds in the table
    assert "the table is the one the snapshot describes" in restart(seed, "node2")
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}


def test_a_table_changed_after_the_snapshot_is_replaced_whole(seed: SeedLab) -> None:
    def change_the_table() -> None:  # as a transaction after the snapshot would
        for command in (
            "flush set inet nodeport-lb nodeport-generation",
            "add element inet nodeport-lb nodeport-generation { 0x1 }",
            "delete element inet nodeport-lb nodeport-services { tcp . 31001 }",
        ):
            seed.nft("node2", *command.split())

    logged = restart(seed, "node2", change_the_table)
    assert "started from the snapshot" in logged
    assert "the table is not the one the snapshot describes" in logged
    assert "full sync of" in logged
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}
    assert hcnp(seed, "node2") == 200


def test_a_corrupt_snapshot_is_ignored_and_the_store_read_whole(seed: SeedLab) -> None:
    def corrupt() -> None:
        path = snapshot(seed, "node2")
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    logged = restart(seed, "node2", corrupt)
    assert "digest does not match" in logged
    assert "started from the snapshot" not in logged
    assert "full sync of" in logged
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}
    assert hcnp(seed, "node2") == 200


def test_another_nodes_snapshot_is_ignored(seed: SeedLab) -> None:
    def swap() -> None:
        shutil.copy(snapshot(seed, "node1"), snapshot(seed, "node2"))

    if not snapshot(seed, "node1").exists():
        restart(seed, "node1")
    logged = restart(seed, "node2", swap)
    assert "made for other code or settings" in logged
    assert "started from the snapshot" not in logged
    assert served(seed) == {"pod": "pod-a", "peer": CLIENT}
    assert hcnp(seed, "node2") == 200
    assert hcnp(seed, "node1") == 503
