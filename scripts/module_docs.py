#!/usr/bin/env python3
"""Write the Service options into nodeport_service's DOCUMENTATION from the model's option
tables (nodeport_lb.model), between the two marker comments. ansible-doc reads DOCUMENTATION
as a literal from the file, so the table's text is written into it; tests check it is current.

    scripts/module_docs.py            # rewrite modules/nodeport_service.py
    scripts/module_docs.py --check    # exit 1 when it is not current
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MODULE = Path(__file__).resolve().parents[1] / "modules" / "nodeport_service.py"
BEGIN = "  # Service options: written from nodeport_lb.model's tables by scripts/module_docs.py\n"
END = "  # end of the Service options\n"


def render(source: str) -> str:
    """``source`` with the block between the markers written anew from the tables."""
    from nodeport_lb.model import options_documentation

    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(source):
        raise ValueError("no Service options block (its marker comments) in the module")
    return pattern.sub(lambda _: BEGIN + options_documentation() + END, source, count=1)


def main(argv: list[str]) -> int:
    path = Path(argv[argv.index("--module") + 1]) if "--module" in argv else MODULE
    source = path.read_text()
    rendered = render(source)
    if "--check" in argv:
        if rendered != source:
            print(f"{path}: its Service options are not the model's; run {sys.argv[0]}")
            return 1
        return 0
    path.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
