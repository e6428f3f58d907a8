"""`nodeport-lb verify` (the testinfra suite, summarised) and `nodeport-lb summary`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nodeport_lb.cli_args import Command
from nodeport_lb.verify.inventory import Inventory
from nodeport_lb.verify.report import read_junit

SUITE = Path(__file__).resolve().parent / "suite"
DESCRIPTION = """\
Runs nodeport-lb's testinfra suite against an inventory: node agents and their hcnp answers
against the EndpointSlices, HAProxy checks on the live hcnp, one holder per VIP, HAProxy's UP
nodes, and requests from a client through each VIP. Prints one line per problem (host: object —
expected, found); exit 1 on any.
"""
INVENTORY_HELP = (
    "Ansible inventory (default: the one Ansible is configured with here, as for "
    "ansible-playbook; in a checkout, ansible.cfg's inventories/lab)"
)


class NoInventory(RuntimeError):
    pass


def configured_inventory() -> str:
    """The inventory ansible-playbook would use here without -i (ansible.cfg's `inventory`,
    ANSIBLE_INVENTORY, else /etc/ansible/hosts); an error when none of it exists, so a run
    outside a checkout says so at once instead of testing an empty inventory."""
    from ansible.config.manager import ConfigManager

    sources = [str(s) for s in ConfigManager().get_config_value("DEFAULT_HOST_LIST") or []]
    existing = [s for s in sources if Path(s).exists()]
    if not existing:
        tried = ", ".join(sources) or "none configured"
        raise NoInventory(
            f"no inventory found: none given with -i, and Ansible's configured inventory "
            f"({tried}) does not exist here; pass -i INVENTORY"
        )
    return ",".join(existing)


def configure_verify(verify: argparse.ArgumentParser) -> None:
    verify.add_argument("-i", "--inventory", help=INVENTORY_HELP)
    verify.add_argument("--junit-xml", type=Path, help="also write the results as JUnit XML")
    verify.add_argument(
        "-n",
        "--workers",
        default="0",
        help="parallel pytest-xdist workers (default 0: none). Every host keeps one SSH "
        "connection for the whole run, so one process is the fastest up to a few dozen hosts "
        "(a worker costs more to start than it saves); try -n 4 on larger inventories",
    )
    verify.add_argument("-k", dest="keyword", help="only checks matching this pytest -k EXPR")
    verify.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    verify.set_defaults(func=_verify)


def configure_summary(summary: argparse.ArgumentParser) -> None:
    summary.add_argument("-i", "--inventory", help=INVENTORY_HELP)
    summary.set_defaults(func=_summary)


# Two top-level commands from one module: summary reads the same inventory as verify.
COMMANDS = (
    Command(
        "verify",
        configure_verify,
        help="check every host of an inventory and the path end to end (testinfra)",
        description=DESCRIPTION,
    ),
    Command(
        "summary",
        configure_summary,
        help="what the chain looks like now: VIP holder, HAProxy UP/DOWN, one request",
    ),
)


def _inventory(args: argparse.Namespace) -> str | None:
    if args.inventory:
        return args.inventory
    try:
        return configured_inventory()
    except NoInventory as error:
        print(f"nodeport-lb {args.command}: {error}", file=sys.stderr)
        return None


def _verify(args: argparse.Namespace) -> int:
    began = time.monotonic()
    args.command = "verify"
    inventory = _inventory(args)
    if inventory is None:
        return 2
    args.inventory = inventory
    with tempfile.TemporaryDirectory(prefix="nodeport-lb-verify-") as scratch:
        junit = args.junit_xml or Path(scratch) / "junit.xml"
        # Only the plugins the suite needs (testinfra, xdist for -n): pytest's autoload would
        # also import every other pytest plugin installed beside nodeport-lb (a second or more
        # of start-up with a test toolkit installed) and let them change the run.
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "testinfra.plugin",
            str(SUITE),
            "-c",
            str(SUITE / "pytest.ini"),
            "--rootdir",
            str(SUITE),
            f"--ansible-inventory={args.inventory}",
            f"--junit-xml={junit}",
            "-o",
            "junit_family=xunit1",
            "-q",
        ]
        if args.workers not in ("0", "1"):
            command += ["-p", "xdist.plugin", "-n", args.workers]
        if args.keyword:
            command += ["-k", args.keyword]
        env = {
            **os.environ,
            "PATH": _path_with_our_tools(),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        }
        listing: subprocess.Popen[bytes] | None = None
        listing_errors = Path(scratch) / "ansible-inventory.stderr"
        pass_fds: tuple[int, ...] = ()
        if args.workers in ("0", "1"):  # xdist's workers each read the inventory themselves
            # ansible-inventory (0.7 s) runs while pytest starts, its output piped to the suite
            read_end, write_end = os.pipe()
            with listing_errors.open("wb") as errors:
                listing = subprocess.Popen(
                    Inventory.list_command([args.inventory]),
                    stdout=write_end,
                    stderr=errors,
                    env=Inventory.list_environment(),
                )
            os.close(write_end)
            command.append(f"--inventory-fd={read_end}")
            pass_fds = (read_end,)
        suite = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            pass_fds=pass_fds,
        )
        for fd in pass_fds:  # the suite's alone: ansible-inventory sees it go if the suite dies
            os.close(fd)
        stdout, stderr = suite.communicate()
        result = subprocess.CompletedProcess(command, suite.returncode, stdout, stderr)
        if listing is not None and listing.wait(timeout=120) != 0:
            said = listing_errors.read_text(errors="replace").strip()
            print(f"nodeport-lb verify: ansible-inventory failed: {said}", file=sys.stderr)
            return 2
        if args.verbose:
            print(result.stdout + result.stderr)
        if not junit.exists():
            print(result.stdout + result.stderr, file=sys.stderr)
            print("nodeport-lb verify: the suite did not run (see above)", file=sys.stderr)
            return 2
        outcome = read_junit(junit)
    seconds = time.monotonic() - began
    for line in outcome.failures:
        print(line)
    verdict = "FAILED" if outcome.failures or result.returncode else "OK"
    print(
        f"nodeport-lb verify {args.inventory}: {verdict} — {outcome.tests} checks, "
        f"{len(outcome.failures)} problem(s), {outcome.skipped} skipped, {seconds:.1f} s"
    )
    if result.returncode not in (0, 1):
        print(result.stdout[-2000:] + result.stderr[-2000:], file=sys.stderr)
    return 0 if verdict == "OK" else 1


def _path_with_our_tools() -> str:
    """testinfra runs `ansible-inventory` from PATH: find ours (beside this Python) even when
    the virtualenv is not activated, e.g. under site.yml or `.venv/bin/python`."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _summary(args: argparse.Namespace) -> int:
    from nodeport_lb.verify.summary import summary_lines

    os.environ["PATH"] = _path_with_our_tools()  # the summary asks through testinfra too
    args.command = "summary"
    inventory = _inventory(args)
    if inventory is None:
        return 2
    args.inventory = inventory
    for line in summary_lines(args.inventory):
        print(line)
    return 0
