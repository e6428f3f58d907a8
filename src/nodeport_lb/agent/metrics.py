"""Prometheus metrics in the text exposition format, kept by hand (no extra dependency)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

PREFIX = "nodeport_lb_"


def _labels(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for v in values)
    return "{" + ",".join(f'{n}="{v}"' for n, v in zip(names, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    """Full precision (timestamps need it); integers without a trailing .0."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = PREFIX + name
        self.help = help_text
        self.label_names = tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def render(self) -> list[str]:
        with self._lock:
            values = dict(self._values)
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for key, value in values.items():
            lines.append(f"{self.name}{_labels(self.label_names, key)} {_number(value)}")
        return lines


class Counter(_Metric):
    kind = "counter"

    def inc(self, *label_values: str, amount: float = 1) -> None:
        with self._lock:
            self._values[label_values] = self._values.get(label_values, 0) + amount

    def value(self, *label_values: str) -> float:
        return self._values.get(label_values, 0)


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, *label_values: str) -> None:
        with self._lock:
            self._values[label_values] = value

    def value(self, *label_values: str) -> float:
        return self._values.get(label_values, 0)


class Histogram(_Metric):
    kind = "histogram"
    BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._observations: dict[tuple[str, ...], list[float]] = {}  # bucket counts + sum + count

    def observe(self, value: float, *label_values: str) -> None:
        with self._lock:
            row = self._observations.setdefault(label_values, [0.0] * (len(self.BUCKETS) + 2))
            for i, bound in enumerate(self.BUCKETS):
                if value <= bound:
                    row[i] += 1
            row[-2] += value
            row[-1] += 1

    def render(self) -> list[str]:
        with self._lock:
            rows = {k: list(v) for k, v in self._observations.items()}
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        for key, row in rows.items():
            for bound, count in zip((*self.BUCKETS, "+Inf"), [*row[:-2], row[-1]], strict=True):
                labels = _labels((*self.label_names, "le"), (*key, str(bound)))
                lines.append(f"{self.name}_bucket{labels} {_number(count)}")
            lines.append(f"{self.name}_sum{_labels(self.label_names, key)} {_number(row[-2])}")
            lines.append(f"{self.name}_count{_labels(self.label_names, key)} {_number(row[-1])}")
        return lines


class AgentMetrics:
    """Every metric the agent exports, in one place so names stay consistent."""

    def __init__(self) -> None:
        self.sync_duration = Histogram(
            "sync_duration_seconds", "Time to compute and apply one ruleset change.", ["mode"]
        )
        self.last_sync_timestamp = Gauge(
            "last_sync_timestamp_seconds", "Unix time the last successful sync was applied."
        )
        self.last_full_sync_duration = Gauge(
            "last_full_sync_duration_seconds", "Duration of the last full (table) sync."
        )
        self.sync_errors = Counter("sync_errors_total", "nft transactions that failed.", ["mode"])
        self.services_programmed = Gauge("services_programmed", "Services with rules.")
        self.rules_programmed = Gauge("rules_programmed", "nftables rules in the agent's table.")
        self.endpoints_programmed = Gauge(
            "endpoints_programmed", "Endpoints that rules DNAT to (this node's view)."
        )
        self.health_responses = Counter(
            "health_responses_total", "Answers of the health servers.", ["server", "code"]
        )
        self.store_errors = Counter(
            "store_errors_total", "Store files that could not be used (parse errors)."
        )
        self.invalid_objects = Counter(
            "invalid_objects_total", "Objects ignored because they do not validate.", ["kind"]
        )
        self.watch_errors = Counter(
            "watch_errors_total", "Kubernetes API list/watch failures.", ["resource"]
        )
        self.healthy = Gauge("healthy", "1 when no queued change is older than 2 sync periods.")

    def render(self) -> str:
        lines: list[str] = []
        for metric in vars(self).values():
            if isinstance(metric, _Metric):
                lines += metric.render()
        return "\n".join(lines) + "\n"
