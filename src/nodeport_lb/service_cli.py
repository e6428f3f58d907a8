"""`nodeport-lb service validate FILE...`: check Service manifests as the API server would.

Exit 0: every Service is valid. Exit 1: at least one is invalid; one line per error, each with
the field path (``file: Service ns/name: spec.ports[0].nodePort: Invalid value: ...``).
Exit 2: a file cannot be read or parsed, or holds something that is not a v1 Service.
Never a traceback, whatever the input.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nodeport_lb.allocation import cross_service_conflicts
from nodeport_lb.cli_args import (
    Command,
    add_command,
    add_ip_families_option,
    add_node_port_range_option,
)
from nodeport_lb.model import apply_defaults
from nodeport_lb.validation import FieldError, validate_service

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


class UnusableInput(Exception):
    """The file cannot be used at all (exit 2)."""


@dataclass
class LoadedService:
    path: str
    manifest: dict[str, Any]

    @property
    def label(self) -> str:
        meta = self.manifest.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        return f"Service {meta.get('namespace') or 'default'}/{meta.get('name') or '<unnamed>'}"


def configure(service: argparse.ArgumentParser) -> None:
    verbs = service.add_subparsers(dest="service_command", metavar="VERB")
    validate = add_command(
        verbs,
        "validate",
        help="validate Service manifests as the Kubernetes API server would",
        description=(
            "Validate Kubernetes v1 Service manifests (YAML or JSON, several documents per file "
            "allowed) as the API server (Kubernetes 1.33, default feature gates) checks a "
            "create, with its field paths and messages: defaulting first, then the IP families "
            "and the node-port allocator (whose refusal, when there is one, is the only error "
            "the API server shows), then every rule of its Service validation: names, "
            "generateName, ports, nodePort range, externalTrafficPolicy / healthCheckNodePort, "
            "clusterIPs, ipFamilies / ipFamilyPolicy, externalIPs, ExternalName, session "
            "affinity, source ranges (field and annotation), loadBalancerClass, "
            "trafficDistribution, appProtocol, topology annotations. Ports are checked across "
            "all the files given, as one cluster's pool."
        ),
        epilog=(
            "exit status:\n"
            "  0  every Service is valid\n"
            "  1  at least one Service is invalid (one line per error, with its field path)\n"
            "  2  a file is unreadable, malformed, or holds something that is not a v1 Service\n\n"
            "examples:\n"
            "  nodeport-lb service validate python-lb.yaml\n"
            "  nodeport-lb service validate --service-node-port-range 20000-39999 svc/*.yaml\n"
            "  nodeport-lb service validate --service-ip-families IPv4,IPv6 dual-stack.yaml\n"
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="manifest file ('-' for stdin)")
    add_node_port_range_option(validate, "for nodePort and healthCheckNodePort")
    add_ip_families_option(validate)
    validate.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    validate.set_defaults(func=run_validate)
    service.set_defaults(func=lambda _args: _usage(service))


COMMANDS = (
    Command(
        "service",
        configure,
        help="work with Service manifests",
        description="Work with Kubernetes v1 Service manifests.",
    ),
)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_UNUSABLE


def read_services(path: str) -> list[LoadedService]:
    """Every Service of one file; raises UnusableInput with a one-line reason."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise UnusableInput("not a text file (invalid UTF-8)") from None
    except OSError as exc:
        raise UnusableInput(f"cannot read: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise UnusableInput("not a text file (contains NUL bytes)")
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UnusableInput(f"malformed YAML{where}: {problem}") from None
    except (ValueError, RecursionError) as exc:
        raise UnusableInput(f"malformed YAML: {exc}") from None
    if not documents:
        raise UnusableInput("holds no Kubernetes object")
    if any(is_recursive(doc) for doc in documents):
        raise UnusableInput("recursive YAML alias (an object that contains itself)")
    services = []
    for number, doc in enumerate(documents, start=1):
        where = f"document {number}" if len(documents) > 1 else "the document"
        if not isinstance(doc, dict):
            shape = "a list" if isinstance(doc, list) else f"a {type(doc).__name__}"
            raise UnusableInput(f"{where} is {shape}, not a Kubernetes object")
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if kind != "Service" or api_version != "v1":
            found = f"{api_version or '<no apiVersion>'} {kind or '<no kind>'}"
            raise UnusableInput(f"{where} is {found}, not a v1 Service")
        services.append(LoadedService(path, doc))
    return services


def is_recursive(value: Any, path: frozenset[int] = frozenset()) -> bool:
    """True when a YAML alias makes a container hold itself (no JSON can express that)."""
    if not isinstance(value, dict | list):
        return False
    if id(value) in path:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(is_recursive(child, path | {id(value)}) for child in children)


def run_validate(args: argparse.Namespace) -> int:
    loaded: list[LoadedService] = []
    unusable = False
    for path in args.files:
        try:
            loaded += read_services(path)
        except UnusableInput as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            unusable = True
    if unusable:
        return EXIT_UNUSABLE

    errors: list[tuple[LoadedService, FieldError]] = []
    defaulted = [apply_defaults(svc.manifest) for svc in loaded]
    for svc, manifest in zip(loaded, defaulted, strict=True):
        errors += [
            (svc, error)
            for error in validate_service(
                manifest, args.service_node_port_range, ip_families=args.service_ip_families
            )
        ]
    # Ports are a cluster-wide pool: two Services in the files cannot both have one.
    for index, error in cross_service_conflicts(defaulted):
        errors.append((loaded[index], error))

    for svc, error in errors:
        print(f"{svc.path}: {svc.label}: {error}")
    if errors:
        return EXIT_INVALID
    if not args.quiet:
        print(f"{len(loaded)} Service(s) valid")
    return EXIT_VALID
