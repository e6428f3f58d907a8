"""How the verification reports: one line per problem, ``host: object — expected, found``.

The suite fails a check with its lines (no traceback); ``nodeport-lb verify`` reads them back
from the JUnit XML, so the summary a user sees is exactly what the checks said.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path


def fail_on(problems: list[str]) -> None:
    # pytest only where the suite runs: the nodes' agent install (same package) has no pytest
    import pytest

    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@dataclass(frozen=True)
class Outcome:
    tests: int
    failures: list[str]  # report lines
    skipped: int


def read_junit(path: Path) -> Outcome:
    root = ET.parse(path).getroot()
    tests = skipped = 0
    lines: list[str] = []
    for case in root.iter("testcase"):
        tests += 1
        name = f"{case.get('classname', '')}.{case.get('name', '')}".strip(".")
        for kind in ("failure", "error"):
            for element in case.findall(kind):
                text = (element.text or element.get("message") or "").strip()
                if kind == "failure" and text and "Traceback" not in text and "\n>" not in text:
                    lines += [line for line in text.splitlines() if line.strip()]
                else:  # a crash rather than a finding: name the check and its last line
                    last = text.splitlines()[-1] if text else element.get("message", "")
                    lines.append(f"{name}: {kind}: {last}")
        if case.find("skipped") is not None:
            skipped += 1
    return Outcome(tests, lines, skipped)
