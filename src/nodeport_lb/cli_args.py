"""What the sub-commands share: how a command is declared and shows its --help, the options
that mean the same everywhere, and one parser for each kind of value."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeport_lb.defaults import DEFAULT_NODE_PORT_RANGE
from nodeport_lb.model import NodePortRange
from nodeport_lb.validation import DEFAULT_SERVICE_IP_FAMILIES, IP_FAMILIES

HELP_WIDTH = 96


def add_command(
    subparsers: Any,
    name: str,
    *,
    help: str,
    description: str | None = None,
    epilog: str | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """A sub-command, its --help laid out as every nodeport-lb command's: ``help`` is its line
    in the list of commands; ``description`` is shown as laid out, a paragraph too wide for the
    help wrapped; ``epilog`` (examples) is kept as written."""
    return subparsers.add_parser(
        name,
        help=help,
        description=help_paragraphs(description) if description else None,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


@dataclass(frozen=True)
class Command:
    """A top-level command as its component declares it (the module's ``COMMANDS``): the
    top-level CLI creates its parser with add_command from these fields, then hands it to
    ``configure`` to fill, so components state only what differs and the call that opens
    every command's --help is written once."""

    name: str
    configure: Callable[[argparse.ArgumentParser], None]
    help: str
    description: str | None = None
    epilog: str | None = None


def help_paragraphs(text: str) -> str:
    """``text`` with each paragraph that has a line wider than the help wrapped (one written as
    a single long string); what is laid out to fit, tables included, is kept as written.
    argparse itself wraps nothing once the epilog's examples need their line breaks kept."""
    return "\n\n".join(
        textwrap.fill(
            " ".join(paragraph.split()),
            HELP_WIDTH,
            break_long_words=False,
            break_on_hyphens=False,  # flags and file names stay whole
        )
        if any(len(line) > HELP_WIDTH for line in paragraph.splitlines())
        else paragraph
        for paragraph in text.strip("\n").split("\n\n")
    )


def add_source_options(parser: argparse.ArgumentParser, *, kubeconfig: str, manifests: str) -> None:
    """Where a command reads the cluster's objects: ``--kubeconfig FILE`` (the Kubernetes API)
    or ``--manifests DIR`` (a manifest store or directory), exactly one; the texts say what
    the command reads there."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubeconfig", metavar="FILE", help=kubeconfig)
    source.add_argument("--manifests", metavar="DIR", type=Path, help=manifests)


def node_port_range_arg(text: str) -> NodePortRange:
    try:
        return NodePortRange.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_node_port_range_option(
    parser: argparse.ArgumentParser, purpose: str, aliases: tuple[str, ...] = ()
) -> None:
    """``--service-node-port-range LOW-HIGH``, named and defaulted as on the API server;
    ``aliases`` keep an older spelling of the flag working."""
    parser.add_argument(
        "--service-node-port-range",
        *aliases,
        metavar="LOW-HIGH",
        type=node_port_range_arg,
        default=NodePortRange(),
        help=f"the API server's node port range, {purpose} (default: {DEFAULT_NODE_PORT_RANGE})",
    )


def ip_families_arg(text: str) -> tuple[str, ...]:
    """``IPv4``, ``IPv6``, ``IPv4,IPv6`` or ``IPv6,IPv4`` (the first is the cluster's default)."""
    families = tuple(part.strip() for part in text.split(","))
    if not 1 <= len(families) <= 2 or len(set(families)) != len(families):
        raise argparse.ArgumentTypeError(f"invalid IP families {text!r}: one or two, no repeats")
    unknown = [f for f in families if f not in IP_FAMILIES]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"invalid IP family {unknown[0]!r}: expected {' or '.join(IP_FAMILIES)}"
        )
    return families


def add_ip_families_option(parser: argparse.ArgumentParser) -> None:
    """``--service-ip-families``: the families of the API server's --service-cluster-ip-range."""
    parser.add_argument(
        "--service-ip-families",
        metavar="FAMILY[,FAMILY]",
        type=ip_families_arg,
        default=DEFAULT_SERVICE_IP_FAMILIES,
        help="the IP families your cluster serves Services in, the default one first, as its "
        "--service-cluster-ip-range lists them: IPv4, IPv6, IPv4,IPv6 or IPv6,IPv4 "
        f"(default: {','.join(DEFAULT_SERVICE_IP_FAMILIES)}); ipFamilies, ipFamilyPolicy and "
        "clusterIPs are checked against them",
    )
