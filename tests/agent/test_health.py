import json
import socket
import time

from nodeport_lb.agent.health import (
    HealthServers,
    ProxyHealth,
    ServiceHealth,
    agent_check_reply,
    proxy_health_response,
    service_health_response,
)
from nodeport_lb.agent.metrics import AgentMetrics
from tests.support.netlib import wait_for


def test_hcnp_body_is_kube_proxys_byte_for_byte() -> None:
    response = service_health_response(ServiceHealth("default", "python-lb", 1), True)
    assert response.status == 200
    assert response.body == (
        b'{\n\t"service": {\n\t\t"namespace": "default",\n\t\t"name": "python-lb"\n\t},\n'
        b'\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}'
    )
    assert dict(response.headers) == {
        "Content-Type": "application/json",
        "X-Content-Type-Options": "nosniff",
        "X-Load-Balancing-Endpoint-Weight": "1",
    }


def test_hcnp_is_503_without_local_endpoints_or_when_the_proxy_is_unhealthy() -> None:
    assert service_health_response(ServiceHealth("d", "s", 0), True).status == 503
    unhealthy = service_health_response(ServiceHealth("d", "s", 2), False)
    assert unhealthy.status == 503
    assert b'"serviceProxyHealthy": false' in unhealthy.body


def test_healthz_follows_node_drain_but_livez_does_not() -> None:
    drained = ProxyHealth(healthy=True, last_updated=1.0, node_eligible=False)
    assert proxy_health_response("/healthz", drained, 2.0).status == 503
    livez = proxy_health_response("/livez", drained, 2.0)
    assert livez.status == 200
    assert set(json.loads(livez.body)) == {"lastUpdated", "currentTime", "nodeEligible", "healthy"}
    assert proxy_health_response("/other", drained, 2.0).status == 404


def test_agent_check_weights_by_local_endpoints() -> None:
    assert agent_check_reply(ServiceHealth("d", "s", 3), True, True) == "up 300%\n"
    assert agent_check_reply(ServiceHealth("d", "s", 0), True, True) == "down 0%\n"
    assert agent_check_reply(None, True, True) == "down 0%\n"
    assert agent_check_reply(ServiceHealth("d", "s", 3), True, False) == "drain\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, method: str = "GET", path: str = "/whatever") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"{method} {path} HTTP/1.0\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        return data


def test_real_listeners_open_answer_and_close_on_loopback() -> None:
    healthy = ProxyHealth(True, time.time(), True)
    servers = HealthServers(AgentMetrics(), lambda: healthy, hcnp_cidrs=["127.0.0.0/8"])
    healthz, hcnp = _free_port(), _free_port()
    servers.start(("127.0.0.1", healthz), None, None)
    try:
        servers.update_services(
            {"default/web": ServiceHealth("default", "web", 2)}, {hcnp: "default/web"}
        )
        answer = wait_for(lambda: _get(hcnp))
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"X-Load-Balancing-Endpoint-Weight: 2\r\n" in answer
        assert answer.endswith(b'"serviceProxyHealthy": true\n}')
        assert _get(hcnp, "HEAD").endswith(b"\r\n\r\n")  # no body for HEAD
        assert _get(healthz, path="/healthz").startswith(b"HTTP/1.1 200 OK")
        servers.update_services({}, {})
        wait_for(lambda: servers.open_hcnp_ports() == {})
        try:
            _get(hcnp)
            raise AssertionError("hcnp still open")
        except ConnectionRefusedError:
            pass
    finally:
        servers.stop()
