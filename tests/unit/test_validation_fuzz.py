"""Whatever the manifest holds, validation answers with field errors and never raises."""

from __future__ import annotations

import copy
import random
from typing import Any

from nodeport_lb.allocation import cross_service_conflicts
from nodeport_lb.model import NodePortRange, apply_defaults
from nodeport_lb.service_cli import LoadedService
from nodeport_lb.validation import validate_service

SEED = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "python-lb", "labels": {"app": "python"}, "annotations": {"a": "b"}},
    "spec": {
        "type": "LoadBalancer",
        "externalTrafficPolicy": "Local",
        "healthCheckNodePort": 31897,
        "selector": {"app": "python"},
        "sessionAffinity": "ClientIP",
        "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10}},
        "loadBalancerSourceRanges": ["10.0.0.0/8"],
        "ports": [{"name": "http", "port": 80, "targetPort": 31000, "nodePort": 31001}],
    },
}
JUNK: list[Any] = [None, 0, -1, 1.5, True, "", "x", "∞", [], {}, [1, "a"], {"k": [None]}, 10**30]


def containers(value: Any, path: tuple = ()) -> list[tuple]:
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += containers(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            found += containers(child, (*path, i))
    return found


def replace(doc: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return doc


def test_random_junk_never_raises() -> None:
    rng = random.Random(20261121)
    paths = containers(SEED)
    for _ in range(3000):
        doc = copy.deepcopy(SEED)
        for _ in range(rng.randint(1, 3)):
            try:
                doc = replace(doc, rng.choice(paths), copy.deepcopy(rng.choice(JUNK)))
            except (KeyError, IndexError, TypeError):
                continue  # an earlier replacement removed the container
        defaulted = apply_defaults(doc) if isinstance(doc, dict) else doc
        errors = validate_service(defaulted, NodePortRange())
        lines = [str(e) for e in errors]
        assert all(isinstance(line, str) and ": " in line for line in lines)
        if isinstance(defaulted, dict):
            cross_service_conflicts([defaulted, defaulted])
            assert LoadedService("f", defaulted).label.startswith("Service ")
