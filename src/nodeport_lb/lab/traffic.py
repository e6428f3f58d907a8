"""Requests through a VIP from a lab client, timestamped, while something changes.

One loop runs *inside* the client (a fresh connection every ~50 ms, 0.5 s timeout), so the
samples are not slowed by starting a process per request; lab hosts share this machine's
clock, so their timestamps compare with ``time.time()`` here. Used by the lab tests and
``bench/lab_failover.py`` to measure failovers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

_LOOP = (
    'end=$(($(date +%s) + {seconds})); while [ "$(date +%s)" -lt "$end" ]; do '
    "t=$(date +%s.%N); r=$(curl -s -m 0.5 http://{vip}:{port}/ || echo FAIL); "
    'echo "$t $r"; sleep 0.05; done'
)


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    answer: dict[str, Any] | None  # the echo pod's JSON; None when the request failed

    @property
    def node(self) -> str | None:
        return self.answer.get("node") if self.answer else None


@dataclass
class RequestLog:
    """``with RequestLog("client1", vip, seconds=20) as log: …`` then read ``log.samples``."""

    client: str
    vip: str
    port: int = 80
    seconds: int = 30
    samples: list[Sample] = field(default_factory=list)
    _process: subprocess.Popen[str] | None = None

    def __enter__(self) -> RequestLog:
        script = _LOOP.format(seconds=self.seconds, vip=self.vip, port=self.port)
        command = ["lab", "exec", self.client, "--", "sh", "-c", script]
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nodeport_lb", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        time.sleep(1.0)  # the loop is running before anything is changed
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None
        if any(exc):
            self._process.kill()  # the loop inside the client ends by itself (seconds)
        out, _ = self._process.communicate(timeout=self.seconds + 30)
        self.samples = [_parse(line) for line in out.splitlines() if line.strip()]

    def first_after(self, since: float, good: Any) -> float | None:
        """Seconds from ``since`` to the first sample for which ``good(sample)`` holds and
        keeps holding until the end of the log (None: never)."""
        later = [s for s in self.samples if s.at >= since]
        for index, sample in enumerate(later):
            if all(good(s) for s in later[index:]):
                return sample.at - since
        return None


def _parse(line: str) -> Sample:
    at, _, rest = line.partition(" ")
    try:
        answer = json.loads(rest)
    except ValueError:
        answer = None
    return Sample(float(at), answer if isinstance(answer, dict) else None)
