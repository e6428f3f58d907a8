"""--probe: each node's healthCheckNodePort answer against the EndpointSlices.

The nodes are HTTP servers on loopback addresses answering as kube-proxy does (200 with
localEndpoints N, 503 with 0); one of them answers wrongly, one not at all.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .objects import endpoint_slice, node, pods, service


def hcnp_server(address: str, port: int, local_endpoints: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(
                {
                    "service": {"namespace": "default", "name": "web"},
                    "localEndpoints": local_endpoints,
                }
            ).encode()
            self.send_response(200 if local_endpoints else 503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def hcnp() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # node1 is right (1 pod there), node2 claims a pod it does not have, node3 is silent
    servers = [hcnp_server("127.0.0.1", port, 1), hcnp_server("127.0.0.2", port, 1)]
    yield port
    for server in servers:
        server.shutdown()
        server.server_close()


def test_probe_reports_disagreeing_and_silent_nodes(doctor, store, hcnp: int) -> None:
    svc = service("web", annotations={}, hcnp=hcnp)
    running = pods("", {"node1": 1}, labels={"app": "web"})
    nodes = [node("node1", "127.0.0.1"), node("node2", "127.0.0.2"), node("node3")]
    directory = store([svc, *running, endpoint_slice(svc, running), *nodes])
    run = doctor(
        "--manifests",
        str(directory),
        "--probe",
        "--node-address",
        "node3=127.0.0.3",
        "--probe-timeout",
        "1",
        "--json",
    )
    probed = [(f["object"], f["check"]) for f in run.findings if f["check"].startswith("hcnp")]
    assert probed == [("Node node2", "hcnp-disagrees"), ("Node node3", "hcnp-unreachable")]
    node2 = next(f for f in run.findings if f["object"] == "Node node2")
    assert "answers 200 with localEndpoints 1" in node2["message"]
    assert "list 0 ready endpoint(s) on node2" in node2["message"]
    without = doctor("--manifests", str(directory), "--json")
    assert not [f for f in without.findings if f["check"].startswith("hcnp")]


def test_a_bad_node_address_option_is_a_usage_error(doctor, store) -> None:
    with pytest.raises(SystemExit) as exc:
        doctor("--manifests", str(store([])), "--probe", "--node-address", "node3")
    assert exc.value.code == 2
