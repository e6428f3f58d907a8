"""HAProxy as it is on a load balancer: its config file and its runtime API's answers."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from nodeport_lb.loadbalancer import Server


@dataclass
class BackendConfig:
    name: str
    lines: list[str] = field(default_factory=list)
    servers: dict[str, Server] = field(default_factory=dict)

    @property
    def http_check(self) -> bool:
        return any(line.split()[:2] == ["option", "httpchk"] for line in self.lines)


def parse_backends(text: str) -> dict[str, BackendConfig]:
    """Backends (and ``listen`` sections) of a haproxy.cfg, with their server lines."""
    backends: dict[str, BackendConfig] = {}
    current: BackendConfig | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if not raw[:1].isspace():  # a section header
            current = None
            if words[0] in ("backend", "listen") and len(words) > 1:
                current = backends.setdefault(words[1], BackendConfig(words[1]))
            continue
        if current is None:
            continue
        if words[0] == "server" and len(words) >= 3:
            # read back by the plan's own Server, the one place that knows the line's words
            current.servers[words[1]] = Server.parse(line)
        else:
            current.lines.append(line)
    return backends


def parse_show_stat(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show stat`` CSV: (backend, server) -> row (pxname, svname, status, check_status …)."""
    lines = text.strip().splitlines()
    if not lines:
        return {}
    lines[0] = lines[0].lstrip("# ")
    rows = csv.DictReader(io.StringIO("\n".join(lines)))
    return {(row["pxname"], row["svname"]): row for row in rows if row.get("pxname")}


def parse_servers_state(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """``show servers state``: (backend, server) -> fields (srv_check_port, srv_port …)."""
    header: list[str] = []
    result = {}
    for line in text.splitlines():
        if line.startswith("#"):
            header = line.lstrip("# ").split()
            continue
        values = line.split()
        if header and len(values) >= len(header):
            row = dict(zip(header, values, strict=False))
            result[(row["be_name"], row["srv_name"])] = row
    return result


def is_up(status: str) -> bool:
    """UP, or UP going down ("UP 1/2"); DOWN, MAINT, NOLB, DRAIN are not taking traffic."""
    return status.split(" ", 1)[0] == "UP"
