"""Argument types shared by the sub-commands (one parser for one kind of value)."""

from __future__ import annotations

import argparse

from nodeport_lb.model import DEFAULT_NODE_PORT_RANGE, NodePortRange


def node_port_range_arg(text: str) -> NodePortRange:
    try:
        return NodePortRange.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_node_port_range_option(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--service-node-port-range LOW-HIGH``, named and defaulted as on the API server."""
    parser.add_argument(
        "--service-node-port-range",
        metavar="LOW-HIGH",
        type=node_port_range_arg,
        default=NodePortRange.parse(DEFAULT_NODE_PORT_RANGE),
        help=f"the API server's node port range, {purpose} (default: {DEFAULT_NODE_PORT_RANGE})",
    )
