#!/usr/bin/env python3
"""Write what the modules' documentation takes from the package, between marker comments:
nodeport_service's Service options from the model's option tables (nodeport_lb.model), and
the default node-port range, in nodeport_service's notes and in the doc fragment's default,
from nodeport_lb.defaults. ansible-doc reads DOCUMENTATION as a literal from the file, so the
text is written into it; tests check it is current.

    scripts/module_docs.py            # rewrite the module and the doc fragment
    scripts/module_docs.py --check    # exit 1 when either is not current
"""

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
MODULE = REPO / "modules" / "nodeport_service.py"
FRAGMENT = REPO / "plugins" / "doc_fragments" / "nodeport_store.py"
NOTES_WIDTH = 92


# a NamedTuple, not a dataclass: the tests load this script from its file, outside sys.modules
class Block(NamedTuple):
    what: str  # names the block in errors
    begin: str  # the marker comment lines, indented as the YAML around them
    end: str
    text: Callable[[], str]


def _options() -> str:
    from nodeport_lb.model import options_documentation

    return options_documentation()


def _refusal_note() -> str:
    """The module's first note, quoting the API server's refusal of the port just below the
    default range (as nodeport_lb's validation words it)."""
    from nodeport_lb import defaults
    from nodeport_lb.model import NodePortRange
    from nodeport_lb.validation.field import Path as FieldPath

    default = NodePortRange(defaults.DEFAULT_NODE_PORT_LOW, defaults.DEFAULT_NODE_PORT_HIGH)
    field = FieldPath("spec").child("ports").index(0).child("nodePort")
    refusal = field.invalid(default.low - 1, default.out_of_range())
    note = (
        f"Invalid input fails the task with the API server's message, for example C({refusal}), "
        "and changes nothing. The checks are those of Kubernetes 1.33 with its default feature "
        "gates, in the API server's order."
    )
    assert '"' not in note and "\\" not in note, "the note is written as a double-quoted scalar"
    wrapped = textwrap.fill(
        f'"{note}"',
        NOTES_WIDTH,
        initial_indent="  - ",
        subsequent_indent="    ",
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped + "\n"


def _range_default() -> str:
    from nodeport_lb.defaults import DEFAULT_NODE_PORT_RANGE

    return f'    default: "{DEFAULT_NODE_PORT_RANGE}"\n'


OPTIONS = Block(
    "Service options",
    "  # Service options: written from nodeport_lb.model's tables by scripts/module_docs.py\n",
    "  # end of the Service options\n",
    _options,
)
REFUSAL = Block(
    "the refusal note",
    "  # the refusal note: written from nodeport_lb.defaults by scripts/module_docs.py\n",
    "  # end of the refusal note\n",
    _refusal_note,
)
RANGE_DEFAULT = Block(
    "the default range",
    "    # the default range: written from nodeport_lb.defaults by scripts/module_docs.py\n",
    "    # end of the default range\n",
    _range_default,
)
MODULE_BLOCKS = (OPTIONS, REFUSAL)
FILES = {MODULE: MODULE_BLOCKS, FRAGMENT: (RANGE_DEFAULT,)}


def render(source: str, blocks: tuple[Block, ...] = MODULE_BLOCKS) -> str:
    """``source`` with each of ``blocks`` (between its markers) written anew."""
    for block in blocks:
        pattern = re.compile(re.escape(block.begin) + r".*?" + re.escape(block.end), re.S)
        if not pattern.search(source):
            raise ValueError(f"no block of {block.what} (its marker comments) in the file")
        text = block.begin + block.text() + block.end
        source = pattern.sub(lambda _, text=text: text, source, count=1)
    return source


def main(argv: list[str]) -> int:
    if "--module" in argv:
        files = {Path(argv[argv.index("--module") + 1]): MODULE_BLOCKS}
    else:
        files = FILES
    stale = []
    for path, blocks in files.items():
        source = path.read_text()
        rendered = render(source, blocks)
        if rendered == source:
            continue
        if "--check" in argv:
            stale.append(path)
        else:
            path.write_text(rendered)
    for path in stale:
        print(f"{path}: not written from the package's tables and defaults; run {sys.argv[0]}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
