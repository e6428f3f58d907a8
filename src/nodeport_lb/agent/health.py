"""The agent's listeners: healthCheckNodePort servers, /healthz + /livez, metrics, agent-check.

All of them run on one asyncio event loop in a thread of their own, so thousands of hcnp
listeners cost no thread each and a slow client never delays a sync. The answers follow
kube-proxy byte for byte where it defines them (pkg/proxy/healthcheck/service_health.go).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate

from nodeport_lb.agent.metrics import CONTENT_TYPE, AgentMetrics

log = logging.getLogger(__name__)

REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}
MAX_REQUEST_HEAD = 16 * 1024
IDLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class ServiceHealth:
    namespace: str
    name: str
    local_endpoints: int


def service_health_response(health: ServiceHealth, proxy_healthy: bool) -> HttpResponse:
    """kube-proxy's hcnp answer: 200 iff local endpoints and a healthy proxy, tab-indented JSON."""
    body = (
        "{\n"
        '\t"service": {\n'
        f'\t\t"namespace": {json.dumps(health.namespace)},\n'
        f'\t\t"name": {json.dumps(health.name)}\n'
        "\t},\n"
        f'\t"localEndpoints": {health.local_endpoints},\n'
        f'\t"serviceProxyHealthy": {"true" if proxy_healthy else "false"}\n'
        "}"
    )
    return HttpResponse(
        200 if health.local_endpoints and proxy_healthy else 503,
        (
            ("Content-Type", "application/json"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Load-Balancing-Endpoint-Weight", str(health.local_endpoints)),
        ),
        body.encode(),
    )


@dataclass(frozen=True)
class ProxyHealth:
    healthy: bool
    last_updated: float
    node_eligible: bool


def proxy_health_response(path: str, health: ProxyHealth, now: float) -> HttpResponse:
    """/healthz (node drain counts) and /livez (it does not), as kube-proxy's :10256."""
    route = path.split("?", 1)[0]
    if route not in ("/healthz", "/livez"):
        return HttpResponse(404, (("Content-Type", "text/plain"),), b"404 page not found\n")
    ok = health.healthy and (health.node_eligible or route == "/livez")
    body = json.dumps(
        {
            "lastUpdated": _timestamp(health.last_updated),
            "currentTime": _timestamp(now),
            "nodeEligible": health.node_eligible,
            "healthy": health.healthy,
        }
    )
    headers = (("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"))
    return HttpResponse(200 if ok else 503, headers, body.encode())


def agent_check_reply(health: ServiceHealth | None, healthy: bool, node_eligible: bool) -> str:
    """HAProxy agent-check answer: weight in % of the server's configured weight.

    With ``weight 1`` on each server line, N local ready endpoints give weight N, so load is
    even per pod; ``drain`` while the node is drained; ``down`` with no local endpoint.
    """
    if not node_eligible:
        return "drain\n"
    if health is None or not healthy or health.local_endpoints == 0:
        return "down 0%\n"
    return f"up {health.local_endpoints * 100}%\n"


def _timestamp(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds") if value else ""


Responder = Callable[[str, str], HttpResponse]  # (method, path) -> response


class HealthServers:
    """Owns the event loop thread and every listener; thread-safe setters for the sync loop."""

    def __init__(
        self,
        metrics: AgentMetrics,
        proxy_health: Callable[[], ProxyHealth],
    ) -> None:
        self.metrics = metrics
        self.proxy_health = proxy_health
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._services: dict[str, ServiceHealth] = {}  # "namespace/name" -> health
        self._hcnp_servers: dict[int, tuple[str, asyncio.Server]] = {}  # port -> (key, server)
        self._hcnp_wanted: dict[int, str] = {}
        self.hcnp_bind_address = "0.0.0.0"

    # --- lifecycle ----------------------------------------------------------------------

    def start(
        self,
        healthz: tuple[str, int] | None,
        metrics: tuple[str, int] | None,
        agent_check: tuple[str, int] | None,
    ) -> None:
        """Bind the fixed listeners; raises OSError (e.g. port in use) before anything runs."""
        self._thread.start()
        fixed: list[asyncio.Future[object]] = []
        if healthz:
            fixed.append(self._submit(self._listen_http(healthz, self._answer_proxy_health)))
        if metrics:
            fixed.append(self._submit(self._listen_http(metrics, self._answer_metrics)))
        if agent_check:
            fixed.append(self._submit(self._listen_agent_check(agent_check)))
        for future in fixed:
            future.result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def _submit(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    # --- state from the sync loop ----------------------------------------------------------

    def update_services(
        self, services: Mapping[str, ServiceHealth], hcnp: Mapping[int, str]
    ) -> None:
        """New counts take effect at once; hcnp listeners open/close on the loop (``hcnp``:
        port -> Service key)."""
        self._services = dict(services)  # one reference swap: readers never see half a state
        self._hcnp_wanted = dict(hcnp)
        self.loop.call_soon_threadsafe(self._reconcile_hcnp)

    def service_health(self, key: str) -> ServiceHealth | None:
        return self._services.get(key)

    def open_hcnp_ports(self) -> dict[int, str]:
        return {port: key for port, (key, _) in self._hcnp_servers.items()}

    def _reconcile_hcnp(self) -> None:
        for port, (key, server) in list(self._hcnp_servers.items()):
            if self._hcnp_wanted.get(port) != key:
                server.close()
                del self._hcnp_servers[port]
                log.info("closed healthCheckNodePort %d of %s", port, key)
        for port, key in self._hcnp_wanted.items():
            if port not in self._hcnp_servers:
                self.loop.create_task(self._open_hcnp(port, key))

    async def _open_hcnp(self, port: int, key: str) -> None:
        if port in self._hcnp_servers or self._hcnp_wanted.get(port) != key:
            return
        self._hcnp_servers[port] = (key, None)  # type: ignore[assignment]  # reserve the port
        try:
            server = await asyncio.start_server(
                self._http_handler(lambda _m, _p: self._answer_hcnp(key)),
                self.hcnp_bind_address,
                port,
                reuse_address=True,
            )
        except OSError as exc:
            del self._hcnp_servers[port]
            self.metrics.health_responses.labels("hcnp", "bind_error").inc()
            log.error("cannot listen on healthCheckNodePort %d of %s: %s", port, key, exc)
            return
        if self._hcnp_wanted.get(port) != key:  # removed while we were binding
            server.close()
            del self._hcnp_servers[port]
            return
        self._hcnp_servers[port] = (key, server)
        log.info("listening on healthCheckNodePort %d for %s", port, key)

    # --- answers ------------------------------------------------------------------------

    def _answer_hcnp(self, key: str) -> HttpResponse:
        namespace, _, name = key.partition("/")
        health = self._services.get(key) or ServiceHealth(namespace, name, 0)
        response = service_health_response(health, self.proxy_health().healthy)
        self.metrics.health_responses.labels("hcnp", str(response.status)).inc()
        return response

    def _answer_proxy_health(self, _method: str, path: str) -> HttpResponse:
        response = proxy_health_response(path, self.proxy_health(), time.time())
        route = path.split("?", 1)[0]
        if route == "/healthz":
            self.metrics.healthz_responses.labels(str(response.status)).inc()
        elif route == "/livez":
            self.metrics.livez_responses.labels(str(response.status)).inc()
        return response

    def _answer_metrics(self, _method: str, path: str) -> HttpResponse:
        if path.split("?", 1)[0] != "/metrics":
            return HttpResponse(404, (("Content-Type", "text/plain"),), b"404 page not found\n")
        return HttpResponse(200, (("Content-Type", CONTENT_TYPE),), self.metrics.render())

    # --- protocol plumbing --------------------------------------------------------------

    async def _listen_http(self, address: tuple[str, int], responder: Responder) -> None:
        await asyncio.start_server(self._http_handler(responder), *address, reuse_address=True)

    async def _listen_agent_check(self, address: tuple[str, int]) -> None:
        await asyncio.start_server(self._agent_check, *address, reuse_address=True)

    def _http_handler(self, responder: Responder):  # type: ignore[no-untyped-def]
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ConnectionError,
                TimeoutError,
                ValueError,
            ):
                while await self._one_request(reader, writer, responder):
                    pass
            writer.close()

        return handle

    async def _one_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, responder: Responder
    ) -> bool:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
        if len(head) > MAX_REQUEST_HEAD:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, path, version = [*lines[0].split(" "), "", "", ""][:3]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length:
            await reader.readexactly(min(length, MAX_REQUEST_HEAD))
        response = responder(method, path)
        keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        status_line = f"HTTP/1.1 {response.status} {REASONS.get(response.status, '')}\r\n"
        header_lines = "".join(f"{k}: {v}\r\n" for k, v in response.headers)
        extra = f"Date: {formatdate(usegmt=True)}\r\nContent-Length: {len(response.body)}\r\n"
        if not keep_alive:
            extra += "Connection: close\r\n"
        writer.write((status_line + header_lines + extra + "\r\n").encode("latin-1"))
        if method != "HEAD":
            writer.write(response.body)
        await writer.drain()
        return keep_alive

    async def _agent_check(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(
            asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, TimeoutError
        ):
            line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
            key = line.decode("latin-1").strip()
            proxy = self.proxy_health()
            reply = agent_check_reply(self._services.get(key), proxy.healthy, proxy.node_eligible)
            self.metrics.health_responses.labels("agent_check", reply.split()[0]).inc()
            writer.write(reply.encode())
            await writer.drain()
        writer.close()
