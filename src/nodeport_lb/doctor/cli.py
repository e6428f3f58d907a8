"""`nodeport-lb doctor`: the findings on a cluster or a manifest directory, one line each."""

from __future__ import annotations

import argparse
import sys

from nodeport_lb.cli_args import Command, add_source_options

EXIT_CLEAN, EXIT_FINDINGS, EXIT_UNREADABLE = 0, 1, 2

DESCRIPTION = """\
Read Services, EndpointSlices, Pods, Nodes and the workloads behind them (read-only) and
report, one line per finding, what will send traffic to nodes that drop it, lose the Service
with one node, or lose the client's address — with the fix.
"""

EPILOG = """\
what it looks for:
  - eTP Local LoadBalancer Services whose cloud controller checks TCP (Exoscale's default), a
    port other than the healthCheckNodePort, or nothing: Exoscale, AWS, DigitalOcean, Hetzner,
    Linode, Oracle Cloud, Azure annotations (the provider is read from the Service's
    annotations, else from the Nodes' spec.providerID)
  - eTP Local Services whose ready pods sit on one node, or are uneven per node (beyond
    --uneven-ratio) while the load balancer cannot weigh nodes by pods; the Deployment or
    StatefulSet behind them without podAntiAffinity/topologySpreadConstraints on
    kubernetes.io/hostname, with the stanza to add
  - eTP Cluster Services in front of ingress-nginx pods configured to read the client address
  - pods whose terminationGracePeriodSeconds is shorter than the load balancer's detection
    time (interval x fall)
  - with --probe: nodes whose healthCheckNodePort answer disagrees with the EndpointSlices

exit status: 0 no findings, 1 findings, 2 the cluster or directory could not be read

examples:
  nodeport-lb doctor --kubeconfig ~/.kube/config
  nodeport-lb doctor --manifests /var/lib/nodeport-lb/lab/store --json
  nodeport-lb doctor --kubeconfig kc --namespace shop --probe
"""


def configure(parser: argparse.ArgumentParser) -> None:
    add_source_options(
        parser,
        kubeconfig="read a cluster through this kubeconfig",
        manifests="read a manifest directory (kubectl get -o yaml files)",
    )
    parser.add_argument("--context", metavar="NAME", help="kubeconfig context (default: current)")
    parser.add_argument("--namespace", "-n", metavar="NS", help="only Services in this namespace")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument(
        "--uneven-ratio",
        type=float,
        metavar="R",
        default=None,
        help="pods per node count as uneven when the busiest node has more than R times the "
        "quietest's (default: 2, so 6:2 is uneven)",
    )
    front = parser.add_argument_group(
        "the load balancer in front of Services no cloud controller serves"
    )
    front.add_argument("--check-interval", type=float, metavar="SECONDS", help="its check interval")
    front.add_argument(
        "--check-fall", type=int, metavar="N", help="failed checks before a node is out"
    )
    front.add_argument(
        "--lb-weights-by-pods",
        action="store_true",
        help="it weighs nodes by their local pods (nodeport-lb's HAProxy agent-check)",
    )
    probe = parser.add_argument_group("probing the nodes")
    probe.add_argument(
        "--probe",
        action="store_true",
        help="ask every node's healthCheckNodePort and compare with the EndpointSlices",
    )
    probe.add_argument(
        "--node-address",
        action="append",
        default=[],
        type=node_address_arg,
        metavar="NODE=ADDRESS",
        help="a node's address when its Node object does not say (repeatable)",
    )
    probe.add_argument(
        "--probe-timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="per request (default: 2)",
    )
    parser.set_defaults(func=run)


COMMANDS = (
    Command(
        "doctor",
        configure,
        help="find externalTrafficPolicy mistakes in a cluster (read-only)",
        description=DESCRIPTION,
        epilog=EPILOG,
    ),
)


def node_address_arg(text: str) -> tuple[str, str]:
    node, sep, address = text.partition("=")
    if not sep or not node or not address:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NODE=ADDRESS")
    return node, address


def run(args: argparse.Namespace) -> int:
    from nodeport_lb.doctor import (
        DoctorOptions,
        FrontingLoadBalancer,
        SourceUnreadable,
        diagnose,
        read_kubernetes,
        read_manifests,
        render_json,
        render_text,
    )
    from nodeport_lb.doctor.diagnose import DEFAULT_UNEVEN_RATIO

    options = DoctorOptions(
        uneven_ratio=args.uneven_ratio or DEFAULT_UNEVEN_RATIO,
        front=FrontingLoadBalancer(
            interval=args.check_interval,
            fall=args.check_fall,
            weights_by_pods=args.lb_weights_by_pods,
        ),
        probe=args.probe,
        node_addresses=dict(args.node_address),
        probe_timeout=args.probe_timeout,
    )
    try:
        if args.manifests:
            snapshot = read_manifests(args.manifests, args.namespace)
        else:
            settings = {"kubeconfig": args.kubeconfig, "context": args.context}
            snapshot = read_kubernetes({k: v for k, v in settings.items() if v}, args.namespace)
    except SourceUnreadable as exc:
        print(f"nodeport-lb doctor: cannot read the cluster: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    findings = diagnose(snapshot, options)
    if args.json:
        print(render_json(findings, snapshot.source))
    elif findings:
        print(render_text(findings))
    print(
        f"nodeport-lb doctor {snapshot.source}: {len(findings)} finding(s), "
        f"{len(snapshot.services)} Service(s) read",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if findings else EXIT_CLEAN
