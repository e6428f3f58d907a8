"""A finding: one mistake doctor found, as data (severity, object, message, fix).

``check`` names the rule that found it (stable, for scripts and tests); ``patch`` is an optional
object fragment to merge into the object (the stanza to add), printed as YAML under the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

ERROR = "error"  # traffic goes (or will go) where it is dropped, or the check cannot work
WARNING = "warning"  # works today, fails on the next drain, node loss or scale-down
HINT = "hint"  # a setting suggests a need the Service does not meet
SEVERITIES = (ERROR, WARNING, HINT)


@dataclass(frozen=True)
class Finding:
    severity: str
    object: str  # "Service default/python-lb", "Deployment shop/web", "Node node2"
    check: str
    message: str
    fix: str
    patch: Mapping[str, Any] | None = field(default=None, compare=False)

    def line(self) -> str:
        return f"{self.severity}: {self.object}: {self.message} — fix: {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.patch is None:
            del data["patch"]
        return data


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.severity, 9), f.object, f.check, f.message))


def render_text(findings: Iterable[Finding]) -> str:
    """One line per finding; a stanza to add follows its line, indented."""
    lines: list[str] = []
    for finding in findings:
        lines.append(finding.line())
        if finding.patch:
            stanza = yaml.safe_dump(dict(finding.patch), sort_keys=False, default_flow_style=False)
            lines += ["    " + text for text in stanza.rstrip("\n").splitlines()]
    return "\n".join(lines)


def render_json(findings: Iterable[Finding], source: str) -> str:
    found = [f.to_dict() for f in findings]
    return json.dumps({"source": source, "findings": found}, indent=2)
