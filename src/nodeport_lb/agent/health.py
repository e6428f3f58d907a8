"""The agent's listeners: healthCheckNodePort servers, /healthz + /livez, metrics, agent-check.

All of them run on one asyncio event loop in a thread of their own, so thousands of hcnp
listeners cost no thread each and a slow client never delays a sync. The answers follow
kube-proxy byte for byte where it defines them (pkg/proxy/healthcheck/service_health.go).

The servers face whatever can reach a node: HTTP is parsed by h11; every connection has a
deadline for its request, body included, and for the idle time between requests; all
listeners share a cap on open connections, and a new connection past it closes the
longest-idle one, so a flood of idle connections never keeps a load balancer's check out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import itertools
import json
import logging
import resource
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate

import h11

from nodeport_lb.agent.metrics import CONTENT_TYPE, AgentMetrics

log = logging.getLogger(__name__)

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 503: "Service Unavailable"}
MAX_REQUEST_HEAD = 16 * 1024
MAX_REQUEST_BODY = 64 * 1024  # health checks send none; a body is read and thrown away
REQUEST_TIMEOUT = 10.0  # from a request's first byte to the end of its body
IDLE_TIMEOUT = 30.0  # between requests on a kept-alive connection
MAX_CONNECTIONS = 1024  # open at once over every listener
MAX_AGENT_CHECK_LINE = 512  # "namespace/name\n" is at most 128 bytes
BIND_RETRY_MAX = 30.0


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
    """/healthz (node drain counts) and /livez (it does not), as kube-proxy's healthz port."""
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
        hcnp_cidrs: Sequence[str] = (),
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.metrics = metrics
        self.proxy_health = proxy_health
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self._services: dict[str, ServiceHealth] = {}  # "namespace/name" -> health
        # port -> (key, server); server None while it is being bound
        self._hcnp_servers: dict[int, tuple[str, asyncio.Server | None]] = {}
        self._hcnp_wanted: dict[int, str] = {}
        # like kube-proxy: hcnp listens on the node's addresses inside --nodeport-addresses
        self.hcnp_cidrs = tuple(hcnp_cidrs)
        self.max_connections = max_connections
        # every open connection, least recently active first: id -> (transport, busy)
        self._connections: OrderedDict[int, tuple[asyncio.WriteTransport, bool]] = OrderedDict()
        self._ids = itertools.count()

    # --- lifecycle ----------------------------------------------------------------------

    def start(
        self,
        healthz: tuple[str, int] | None,
        metrics: tuple[str, int] | None,
        agent_check: tuple[str, int] | None,
    ) -> None:
        """Bind the fixed listeners; raises OSError (e.g. port in use) before anything runs."""
        self.max_connections = min(self.max_connections, _open_file_limit() // 2)
        self._thread.start()
        fixed: list[concurrent.futures.Future[object]] = []
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

    def _submit(self, coro: Coroutine[object, None, object]) -> concurrent.futures.Future[object]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    # --- state from the sync loop ----------------------------------------------------------

    def update_services(
        self, services: Mapping[str, ServiceHealth], hcnp: Mapping[int, str]
    ) -> None:
        """Replace every count and every hcnp listener (``hcnp``: port -> Service key); new
        counts take effect at once, listeners open/close on the loop."""
        self._services = dict(services)  # one reference swap: readers never see half a state
        wanted = dict(hcnp)
        self.loop.call_soon_threadsafe(self._replace_hcnp, wanted)

    def update_changed(
        self, services: Mapping[str, ServiceHealth | None], hcnp: Mapping[int, str | None]
    ) -> None:
        """Only what changed: a Service's new count (None: gone), a port's new Service (None:
        closed). At 10,000 Services a copy of every count and a walk over every listener for
        each change were most of what an endpoint change cost here. Each count takes effect
        at once (an answer reads one Service's entry, so it never sees half of one)."""
        current = self._services
        for key, health in services.items():
            if health is None:
                current.pop(key, None)
            else:
                current[key] = health
        if hcnp:
            self.loop.call_soon_threadsafe(self._change_hcnp, dict(hcnp))

    def open_hcnp_ports(self) -> dict[int, str]:
        return {port: key for port, (key, _) in list(self._hcnp_servers.items())}

    # the wanted listeners are changed on the loop only, so nothing there sees them change
    def _replace_hcnp(self, wanted: dict[int, str]) -> None:
        ports = set(self._hcnp_wanted) | set(wanted) | set(self._hcnp_servers)
        self._hcnp_wanted = wanted
        self._reconcile_ports(ports)

    def _change_hcnp(self, changes: dict[int, str | None]) -> None:
        for port, key in changes.items():
            if key is None:
                self._hcnp_wanted.pop(port, None)
            else:
                self._hcnp_wanted[port] = key
        self._reconcile_ports(changes)

    def _reconcile_ports(self, ports: Iterable[int]) -> None:
        for port in ports:
            wanted = self._hcnp_wanted.get(port)
            held = self._hcnp_servers.get(port)
            if held is not None:
                key, server = held
                if key == wanted:
                    continue
                if server is None:
                    continue  # still binding: that task sees it is not wanted and hands over
                server.close()
                del self._hcnp_servers[port]
                log.info("closed healthCheckNodePort %d of %s", port, key)
            if wanted is not None:
                self.loop.create_task(self._open_hcnp(port, wanted))

    async def _open_hcnp(self, port: int, key: str) -> None:
        """Listen on ``port`` while it is wanted; a port that cannot be bound (a local process
        holds it) is tried again, backing off to every 30 s, with a log line each time the
        reason changes."""
        if port in self._hcnp_servers or self._hcnp_wanted.get(port) != key:
            return
        self._hcnp_servers[port] = (key, None)  # reserve the port
        delay, reported = 1.0, ""
        while True:
            try:
                server = await asyncio.start_server(
                    self._http_handler(lambda _m, _p: self._answer_hcnp(key)),
                    self._hcnp_hosts(),
                    port,
                    reuse_address=True,
                    backlog=1024,
                )
                break
            except OSError as exc:
                self.metrics.health_responses.labels("hcnp", "bind_error").inc()
                if str(exc) != reported:
                    log.error(
                        "cannot listen on healthCheckNodePort %d of %s: %s; retrying",
                        port,
                        key,
                        exc,
                    )
                    reported = str(exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, BIND_RETRY_MAX)
            if self._hcnp_wanted.get(port) != key:  # no longer wanted while we waited
                del self._hcnp_servers[port]
                self._reconcile_ports([port])  # another Service may want it now
                return
        if self._hcnp_wanted.get(port) != key:  # removed while we were binding
            server.close()
            del self._hcnp_servers[port]
            self._reconcile_ports([port])
            return
        self._hcnp_servers[port] = (key, server)
        log.info("listening on healthCheckNodePort %d for %s", port, key)

    def _hcnp_hosts(self) -> list[str]:
        if not self.hcnp_cidrs:
            return ["0.0.0.0"]
        hosts = local_addresses(self.hcnp_cidrs)
        if not hosts:
            raise OSError(f"no local address inside --nodeport-addresses {self.hcnp_cidrs}")
        return hosts

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
        await asyncio.start_server(
            self._http_handler(responder), *address, reuse_address=True, backlog=1024
        )

    async def _listen_agent_check(self, address: tuple[str, int]) -> None:
        await asyncio.start_server(self._agent_check, *address, reuse_address=True, backlog=1024)

    def _admit(self, writer: asyncio.StreamWriter) -> int:
        """Count a new connection; past the cap, close the longest-idle one (a busy one only
        when none is idle) so the newcomer, likely a load balancer's check, is served."""
        if len(self._connections) >= self.max_connections:
            victim = next((k for k, (_, busy) in self._connections.items() if not busy), None)
            if victim is None:
                victim = next(iter(self._connections))
            transport, _ = self._connections.pop(victim)
            transport.abort()
            self.metrics.health_responses.labels("any", "evicted").inc()
        conn_id = next(self._ids)
        self._connections[conn_id] = (writer.transport, False)
        return conn_id

    def _mark(self, conn_id: int, busy: bool) -> None:
        if conn_id in self._connections:
            self._connections[conn_id] = (self._connections[conn_id][0], busy)
            self._connections.move_to_end(conn_id)

    def _http_handler(self, responder: Responder):
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn_id = self._admit(writer)
            try:
                await self._serve_http(conn_id, reader, writer, responder)
            except (ConnectionError, TimeoutError, h11.ProtocolError):
                pass
            finally:
                self._connections.pop(conn_id, None)
                writer.close()

        return handle

    async def _serve_http(
        self,
        conn_id: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        responder: Responder,
    ) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        while True:
            request = await self._next_event(conn, reader, writer, IDLE_TIMEOUT, conn_id)
            if not isinstance(request, h11.Request):
                return  # closed, or a protocol error already answered
            self._mark(conn_id, busy=True)
            deadline = time.monotonic() + REQUEST_TIMEOUT
            body = 0
            while True:  # the body, chunked or not, within the same deadline
                event = await self._next_event(
                    conn, reader, writer, deadline - time.monotonic(), conn_id
                )
                if isinstance(event, h11.Data):
                    body += len(event.data)
                    if body > MAX_REQUEST_BODY:
                        return
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            response = responder(request.method.decode("latin-1"), request.target.decode("latin-1"))
            headers = [
                *response.headers,
                ("Date", formatdate(usegmt=True)),
                ("Content-Length", str(len(response.body))),
            ]
            head = h11.Response(
                status_code=response.status,
                headers=headers,
                reason=REASONS.get(response.status, "").encode(),
            )
            writer.write(conn.send(head))
            if request.method != b"HEAD":
                writer.write(conn.send(h11.Data(data=response.body)))
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            self._mark(conn_id, busy=False)
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return  # Connection: close, HTTP/1.0, or a client that half-closed
            conn.start_next_cycle()

    async def _next_event(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        timeout: float,
        conn_id: int,
    ) -> object:
        """The next h11 event, reading as needed; raises TimeoutError past ``timeout``. A
        request h11 refuses gets a 400 and the connection ends."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._bad_request(conn, writer, exc.error_status_hint)
                return None
            if event is not h11.NEED_DATA:
                return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            data = await asyncio.wait_for(reader.read(65536), remaining)
            self._mark(conn_id, busy=True)
            conn.receive_data(data)

    @staticmethod
    def _bad_request(conn: h11.Connection, writer: asyncio.StreamWriter, status: int) -> None:
        with contextlib.suppress(h11.LocalProtocolError):
            body = REASONS.get(status, "Bad Request").encode() + b"\n"
            head = h11.Response(
                status_code=status,
                headers=[("Content-Length", str(len(body))), ("Connection", "close")],
                reason=REASONS.get(status, "Bad Request").encode(),
            )
            writer.write(conn.send(head) + conn.send(h11.Data(data=body)))
            writer.write(conn.send(h11.EndOfMessage()))

    async def _agent_check(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One line in, one answer out. A line longer than any Service key is refused quietly
        (counted, no traceback): a flood of them must not flood the log."""
        conn_id = self._admit(writer)
        try:
            line = await asyncio.wait_for(self._read_line(reader), REQUEST_TIMEOUT)
            if line is None:
                self.metrics.health_responses.labels("agent_check", "too_long").inc()
                return
            key = line.decode("latin-1").strip()
            proxy = self.proxy_health()
            reply = agent_check_reply(self._services.get(key), proxy.healthy, proxy.node_eligible)
            self.metrics.health_responses.labels("agent_check", reply.split()[0]).inc()
            writer.write(reply.encode())
            await writer.drain()
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._connections.pop(conn_id, None)
            writer.close()

    @staticmethod
    async def _read_line(reader: asyncio.StreamReader) -> bytes | None:
        """Up to a newline (or the end), None past ``MAX_AGENT_CHECK_LINE`` bytes."""
        data = b""
        while b"\n" not in data:
            chunk = await reader.read(MAX_AGENT_CHECK_LINE + 1 - len(data))
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_AGENT_CHECK_LINE:
                return None
        return data.split(b"\n", 1)[0]


def _open_file_limit() -> int:
    """Raise the soft limit on open files to the hard one (as Go programs like kube-proxy do
    at start) and return it: the connection cap must stay below it, or accept() fails first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    return soft


def local_addresses(cidrs: Sequence[str]) -> list[str]:
    """This host's IPv4 addresses inside ``cidrs`` (iproute2's view, as kube-proxy's netlink)."""
    try:
        proc = subprocess.run(
            ["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, timeout=10
        )
        links = json.loads(proc.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise OSError(f"cannot list this host's addresses: {exc}") from exc
    networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    found = []
    for link in links:
        for info in link.get("addr_info") or []:
            try:
                address = ipaddress.ip_address(info.get("local", ""))
            except ValueError:
                continue
            if any(address in network for network in networks) and str(address) not in found:
                found.append(str(address))
    return found
