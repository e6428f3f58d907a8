"""The top-level CLI: it creates every component's commands from their declarations, the
agent's alone when only the agent runs, and leaves out a component that is not built."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

from nodeport_lb.cli import AGENT_COMMAND, AGENT_COMPONENT, COMPONENTS, build_parser
from nodeport_lb.cli_args import Command


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(subparsers.choices)


def test_every_component_declares_commands_the_parser_is_made_from():
    declared = [
        command
        for module_name in COMPONENTS
        for command in importlib.import_module(module_name).COMMANDS
    ]
    assert all(isinstance(command, Command) for command in declared)
    made = _commands(build_parser())
    # In COMPONENTS' order (the order of `nodeport-lb --help`), each once.
    assert list(made) == [c.name for c in declared]
    for command in declared:
        parser = made[command.name]
        assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
        assert parser.epilog == command.epilog
        assert (parser.description is None) == (command.description is None)
        # configure filled the parser: each command runs something or has verbs of its own.
        assert parser.get_default("func") or any(
            isinstance(a, argparse._SubParsersAction) for a in parser._actions
        )


def test_a_component_not_built_is_left_out():
    parser = build_parser(["nodeport_lb.not_built_yet.cli", AGENT_COMPONENT])
    assert list(_commands(parser)) == [AGENT_COMMAND]


def test_the_agent_alone_imports_no_other_component():
    others = [name for name in COMPONENTS if name != AGENT_COMPONENT]
    code = (
        "import sys\n"
        "from nodeport_lb.cli import main\n"
        "try:\n"
        f"    main([{AGENT_COMMAND!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print([m for m in {others!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines()[-1] == "[]"
    assert "nodeport-lb agent" in result.stdout
