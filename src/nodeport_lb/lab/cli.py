"""`nodeport-lb lab …`: build, inspect, disturb and remove the lab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nodeport_lb.cli_args import Command, add_command
from nodeport_lb.lab import apt_repo, endpoint_controller, lifecycle, pods
from nodeport_lb.lab.echo import DEFAULT_ECHO_PORT, DEFAULT_HTTP_PORT
from nodeport_lb.lab.state import LabState, lab_lock
from nodeport_lb.lab.system import LabError, require_root_and_tools

DESCRIPTION = """\
The lab: nodes, load balancers and clients as systemd-nspawn containers on a private bridge
(10.213.0.0/16, no route outside), SSH-reachable, written to inventories/lab/hosts.yml. Needs
root.
"""

EXAMPLES = """\
examples:
  nodeport-lb lab up                         # 3 nodes, 2 LBs, 1 client, one app=python pod
  nodeport-lb lab up --nodes 2 --lbs 1       # smaller
  nodeport-lb lab up --kube-proxy            # nodes with a kube-proxy stand-in (a real cluster)
  nodeport-lb lab status                     # table; --json for scripts
  nodeport-lb lab exec client1 -- curl -s 10.213.130.2:31000
  nodeport-lb lab pod add --node node1 --labels app=python --count 2
  nodeport-lb lab pod add --node node3 --labels app=python --app http-server
  nodeport-lb lab pod logs python-abcde      # the plain app's access log: who connected
  nodeport-lb lab pod rm python-abcde --grace 5
  nodeport-lb lab sync-endpoints             # after Services changed in the store
  nodeport-lb lab fault stop-node node2      # power a node off (start-node to boot it again)
  nodeport-lb lab down                       # remove everything (safe to run any time)
"""


def configure(lab: argparse.ArgumentParser) -> None:
    commands = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)

    up = add_command(
        commands,
        "up",
        help="build and boot the lab (reuses the cached base rootfs)",
        epilog=EXAMPLES,
    )
    up.add_argument("--nodes", type=int, default=3, help="Kubernetes nodes (default 3)")
    up.add_argument("--lbs", type=int, default=2, help="load balancers (default 2)")
    up.add_argument("--clients", type=int, default=1, help="client hosts (default 1)")
    up.add_argument("--mirror", help="Debian mirror URL (default: this machine's apt sources)")
    up.add_argument(
        "--inventory",
        type=Path,
        help="where to write hosts.yml (default: inventories/lab/hosts.yml of the checkout)",
    )
    up.add_argument(
        "--no-seed-pod",
        dest="seed_pod",
        action="store_false",
        help="do not create the example app=python echo pod",
    )
    up.add_argument(
        "--kube-proxy",
        action="store_true",
        help="play a cluster with kube-proxy: every node runs a STAND-IN for kube-proxy "
        "(kube-proxy.service: table ip kube-proxy with the NodePort rules, the "
        "healthCheckNodePorts, kube-proxy's /healthz), since the real binary cannot be installed "
        "here; site.yml then runs the agent in companion mode",
    )
    up.set_defaults(func=_up)

    down = commands.add_parser("down", help="remove everything the lab made (idempotent)")
    down.set_defaults(func=_down)

    status = commands.add_parser(
        "status", help="hosts, VIPs and pods (exit 0 when the lab is up, 3 when it is not)"
    )
    status.add_argument(
        "--json", action="store_true", help="machine-readable, in a shape kept across versions"
    )
    status.set_defaults(func=_status)

    exec_ = commands.add_parser(
        "exec",
        help="run a command on a lab host; its output and exit code pass through",
        usage="nodeport-lb lab exec HOST -- COMMAND [ARG...]",
    )
    exec_.add_argument("host")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    exec_.set_defaults(func=_exec)

    pod = commands.add_parser("pod", help="add or remove pods, read their logs")
    pod_commands = pod.add_subparsers(dest="pod_command", metavar="COMMAND", required=True)
    add = add_command(
        pod_commands,
        "add",
        help="start pods on a node",
        description=(
            "Start pods (network namespaces attached to the node) running the echo backend, "
            "which answers with the TCP peer and any PROXY header's source as JSON, or with "
            "--app http-server the plain `python3 -m http.server PORT` (no PROXY support; "
            "its access log, `lab pod logs NAME`, shows the address each request came from)."
        ),
    )
    add.add_argument("--node", required=True)
    add.add_argument("--labels", required=True, help="key=value[,key=value]")
    add.add_argument("--count", type=int, default=1)
    add.add_argument("--name", help="pod name (default: <app>-<5 random chars>)")
    add.add_argument(
        "--port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help=f"HTTP port, named 'http' (default {DEFAULT_HTTP_PORT})",
    )
    add.add_argument(
        "--echo-port",
        type=int,
        default=DEFAULT_ECHO_PORT,
        help=f"TCP/UDP echo port, 'echo-tcp'/'echo-udp' (default {DEFAULT_ECHO_PORT}; echo only)",
    )
    add.add_argument(
        "--app",
        choices=pods.APPS,
        default="echo",
        help="what the pod runs (default echo; http-server: python3 -m http.server PORT)",
    )
    add.set_defaults(func=_pod_add)
    logs = pod_commands.add_parser(
        "logs", help="print a pod's output (the http-server's access log, the echo's messages)"
    )
    logs.add_argument("name")
    logs.set_defaults(func=_pod_logs)
    rm = pod_commands.add_parser(
        "rm", help="delete a pod: terminating but serving for --grace seconds, then gone"
    )
    rm.add_argument("name", nargs="+")
    rm.add_argument(
        "--grace",
        type=float,
        default=30.0,
        help="termination grace period in seconds (default 30, as Kubernetes)",
    )
    rm.set_defaults(func=_pod_rm)

    sync = commands.add_parser(
        "sync-endpoints", help="recompute EndpointSlices in the store from Services and pods"
    )
    sync.set_defaults(func=_sync)

    controller = commands.add_parser(
        "endpoint-controller",
        help="keep EndpointSlices in step with the store (started by `lab up`)",
    )
    controller.add_argument("--store", type=Path, required=True)
    controller.set_defaults(func=_endpoint_controller)

    package_server = commands.add_parser(
        "package-server",
        help="serve the hosts' Debian package repository (started by `lab up`)",
    )
    package_server.add_argument("--directory", type=Path, required=True)
    package_server.set_defaults(func=_package_server)

    fault = commands.add_parser("fault", help="break things on purpose")
    faults = fault.add_subparsers(dest="fault", metavar="FAULT", required=True)
    for verb, role, text in (
        ("stop-node", "node", "power a node off (container stopped, cable pulled)"),
        ("start-node", "node", "boot a stopped node again"),
        ("stop-lb", "lb", "power a load balancer off"),
        ("start-lb", "lb", "boot a stopped load balancer again"),
    ):
        parser = faults.add_parser(verb, help=text)
        parser.add_argument("host")
        if verb.startswith("stop"):
            parser.add_argument(
                "--crash",
                action="store_true",
                help="no clean shutdown: pull the cable and kill it (a power cut)",
            )
        parser.set_defaults(func=_fault_host, start=verb.startswith("start"), role=role)
    kill = faults.add_parser("kill-pod", help="kill a pod's process (endpoint not ready)")
    kill.add_argument("name")
    kill.set_defaults(func=_fault_kill_pod)


COMMANDS = (
    Command(
        "lab",
        configure,
        help="real Debian hosts (systemd-nspawn) on a private bridge, with echo pods",
        description=DESCRIPTION,
        epilog=EXAMPLES,
    ),
)


def _guarded(function: Any) -> Any:
    """Root/tool checks and LabError as one clear line instead of a traceback."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            require_root_and_tools()
            return int(function(args) or 0)
        except (LabError, LookupError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return wrapper


@_guarded
def _up(args: argparse.Namespace) -> int:
    state = lifecycle.up(
        args.nodes,
        args.lbs,
        args.clients,
        args.mirror,
        args.inventory,
        args.seed_pod,
        args.kube_proxy,
    )
    print(lifecycle.status_table(state))
    return 0


@_guarded
def _down(args: argparse.Namespace) -> int:
    removed = lifecycle.down()
    print("\n".join(f"removed {item}" for item in removed) or "nothing to remove")
    return 0


@_guarded
def _status(args: argparse.Namespace) -> int:
    state = LabState.load()
    if args.json:
        print(json.dumps(lifecycle.status(state), indent=2))
    else:
        print(lifecycle.status_table(state))
    # like `systemctl status`: 3 = not running, so scripts can bring the lab up first
    return 0 if lifecycle.lab_exists(state) else 3


@_guarded
def _exec(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return lifecycle.exec_on_host(args.host, command)


@_guarded
def _pod_add(args: argparse.Namespace) -> int:
    added = pods.add_pods(
        args.node,
        pods.parse_labels(args.labels),
        args.count,
        args.name,
        args.port,
        args.echo_port,
        args.app,
    )
    for pod in added:
        print(f"{pod.name} {pod.node} {pod.address}")
    return 0


@_guarded
def _pod_logs(args: argparse.Namespace) -> int:
    sys.stdout.write(pods.read_log(args.name))
    return 0


@_guarded
def _pod_rm(args: argparse.Namespace) -> int:
    for name in args.name:
        pods.remove_pod(name, args.grace)
        print(f"removed {name}")
    return 0


@_guarded
def _sync(args: argparse.Namespace) -> int:
    with lab_lock():
        state = LabState.load()
        pods.require_up(state)
        changes = pods.sync_endpoints(state)
    print("\n".join(changes) or "EndpointSlices up to date")
    return 0


@_guarded
def _endpoint_controller(args: argparse.Namespace) -> int:
    return endpoint_controller.run(args.store)


@_guarded
def _package_server(args: argparse.Namespace) -> int:
    return apt_repo.serve(args.directory)


@_guarded
def _fault_host(args: argparse.Namespace) -> int:
    if args.start:
        lifecycle.start_host(args.host, args.role)
    else:
        lifecycle.stop_host(args.host, args.role, crash=args.crash)
    return 0


@_guarded
def _fault_kill_pod(args: argparse.Namespace) -> int:
    pods.kill_pod(args.name)
    return 0
