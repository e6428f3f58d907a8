"""The `nodeport-lb` command: one entry point, one sub-command per component.

Each component declares its top-level commands as data (``COMMANDS``, a tuple of
cli_args.Command); this file creates each one's parser from that declaration and lets the
component's ``configure`` fill it, so it never learns their options.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from nodeport_lb import __version__
from nodeport_lb.cli_args import Command, add_command

# The module of every component that declares commands (its COMMANDS), imported by
# build_parser: one whose own module is absent (not built) is left out instead of breaking
# every other command.
COMPONENTS: list[str] = [
    "nodeport_lb.service_cli",
    "nodeport_lb.agent.cli",
    "nodeport_lb.lab.cli",
    "nodeport_lb.verify.cli",
    "nodeport_lb.cloud.cli",
    "nodeport_lb.doctor.cli",
]


# The agent alone: every node starts it, and every restart serves stale rules until it has
# synced, so it does not wait for the other components' imports (a third of its start).
AGENT_COMMAND = "agent"
AGENT_COMPONENT = "nodeport_lb.agent.cli"


def build_parser(components: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nodeport-lb",
        description=(
            "Provision and verify the external load-balancer chain in front of Kubernetes "
            "Services with externalTrafficPolicy: Local (VIP -> HAProxy -> nodePort -> pod, "
            "health-checked over HTTP on the healthCheckNodePort)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "examples:\n"
            "  nodeport-lb service validate service.yaml\n"
            "  nodeport-lb lab up && ansible-playbook site.yml\n"
            "  nodeport-lb verify -i inventories/lab\n"
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMPONENTS if components is None else components:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # component not built yet
            raise
        commands: tuple[Command, ...] = module.COMMANDS  # typed: the import is by name
        for command in commands:
            command.configure(
                add_command(
                    subparsers,
                    command.name,
                    help=command.help,
                    description=command.description,
                    epilog=command.epilog,
                )
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    agent_only = bool(words) and words[0] == AGENT_COMMAND
    parser = build_parser([AGENT_COMPONENT] if agent_only else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Users get one line; NODEPORT_LB_DEBUG=1 shows the traceback for a bug report.
        if os.environ.get("NODEPORT_LB_DEBUG"):
            raise
        print(f"nodeport-lb: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
