"""What every bench shares: percentiles, the machine's load, JSON output and optional plots."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def argument_parser(
    doc: str, plot_help: str = "write JSON and a PNG here"
) -> argparse.ArgumentParser:
    """A bench's command line from its docstring (first paragraph: what it measures; from
    "usage:" on: how to run it), with the --plot DIR every bench takes."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0],
        epilog=doc.split("usage:")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--plot", metavar="DIR", type=Path, help=plot_help)
    return parser


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {
        "p50": round(pick(0.5), 3),
        "p99": round(pick(0.99), 3),
        "max": round(ordered[-1], 3),
        "n": len(ordered),
    }


def load_average() -> list[float]:
    """1/5/15-minute load: the machine is shared, so absolute timings come with it."""
    return [round(x, 2) for x in os.getloadavg()]


def write_outputs(result: dict[str, Any], plot_dir: Path | None, name: str, plotter: str) -> None:
    """Print the JSON; with ``plot_dir``, also write ``NAME.json`` and the bench's PNGs there
    (matplotlib comes from the ``bench`` extra, imported only when plots are asked for)."""
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)
        try:
            plots = importlib.import_module("bench.plots")
            result["plots"] = [str(p) for p in getattr(plots, plotter)(result, plot_dir)]
        except ImportError as exc:
            print(f"{name}: no plots ({exc}); pip install -e '.[bench]'", file=sys.stderr)
        (plot_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
