"""`nodeport-lb agent`: the node proxy agent in the foreground."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import socket
import sys
from pathlib import Path

from nodeport_lb.agent.preflight import COMPANION, MODES, STANDALONE, dataplane_signs
from nodeport_lb.cli_args import Command, add_node_port_range_option, add_source_options
from nodeport_lb.defaults import (
    AGENT_CHECK_PORT,
    COMPANION_METRICS_ADDRESS,
    COMPANION_METRICS_PORT,
    DEFAULT_HEALTHZ_ADDRESS,
    DEFAULT_METRICS_ADDRESS,
    PROXY_HEALTHZ_PORT,
    address_text,
)
from nodeport_lb.services.base import BackendUnavailable

# kube-proxy's metrics address; beside kube-proxy (which holds it) the agent takes another
METRICS_ADDRESS_BY_MODE = {
    STANDALONE: DEFAULT_METRICS_ADDRESS,
    COMPANION: COMPANION_METRICS_ADDRESS,
}

DESCRIPTION = f"""\
Run the node proxy agent in the foreground, logging to stderr.

Two modes, one per node:

  companion   beside kube-proxy (or another dataplane that serves nodePorts and
              healthCheckNodePorts): the agent programs no rules and opens no
              healthCheckNodePort or :{PROXY_HEALTHZ_PORT} listener; it answers HAProxy
              agent-checks with the node's weight (its local ready endpoints, or drain)
              and serves metrics.
              The normal case on a Kubernetes cluster.
  standalone  on nodes without kube-proxy (hosts without a cluster, the lab): the agent is
              the dataplane. It programs kube-proxy-compatible NodePort rules in its own
              nftables table (`table inet nodeport-lb`, replaced atomically; other tables
              are never touched) and answers the load balancers' health checks itself.
              It refuses to start where kube-proxy runs.

What the standalone dataplane does, as kube-proxy:

  externalTrafficPolicy Cluster  any usable endpoint in the cluster; the pod sees this
                                 node's address (masquerade)
  externalTrafficPolicy Local    only this node's endpoints; the pod sees the client's
                                 address; traffic is dropped when the node has none
  healthCheckNodePort            one HTTP server per LoadBalancer + Local Service:
                                 200 with localEndpoints >= 1, else 503 (kube-proxy's body)

With --load-balancer (one per load balancer), the replies of connections a load
balancer opens from a client's address (HAProxy's transparent mode) are routed back
through that load balancer: a mark per load balancer, set from its link-layer address, in
`table inet nodeport-lb-return-path`, and `ip rule fwmark MARK lookup TABLE`.

Objects come from a manifest store directory (--manifests, changes picked up within
100 ms) or from the Kubernetes API (--kubeconfig). Stopping or killing the agent leaves
the rules in place so traffic keeps flowing; a restart reconciles them."""

_METRICS = address_text(DEFAULT_METRICS_ADDRESS)
EPILOG = f"""\
examples:
  nodeport-lb agent --mode companion --kubeconfig /etc/nodeport-lb/kubeconfig \\
      --agent-check-port {AGENT_CHECK_PORT}                # beside kube-proxy
  nodeport-lb agent --node-name node1 --manifests /etc/nodeport-lb/manifests
  nodeport-lb agent --node-name "$(hostname)" --kubeconfig /etc/nodeport-lb/kubeconfig \\
      --nodeport-addresses 192.0.2.0/24 --agent-check-port 10258
  nodeport-lb agent --node-name node1 --manifests /etc/nodeport-lb/manifests \
      --load-balancer lb1,52:54:00:aa:bb:01,192.0.2.101 \
      --load-balancer lb2,52:54:00:aa:bb:02,192.0.2.102
  curl -s http://NODE:HCNP/                  # what a load balancer's health check sees
  curl -s http://{_METRICS}/metrics     # Prometheus metrics ({COMPANION_METRICS_PORT} in
                                             # companion mode):
                                             # kube-proxy's names where they mean the same
                                             # (kubeproxy_sync_proxy_rules_*,
                                             # kubeproxy_network_programming_duration_seconds),
                                             # the rest nodeport_lb_*
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default=STANDALONE,
        help="companion: beside kube-proxy, no rules of its own; standalone: the agent is "
        "the node's NodePort dataplane (default: standalone; the node_proxy role picks the "
        "mode each node needs)",
    )
    parser.add_argument(
        "--node-name",
        default=socket.gethostname(),
        help="this node's name as in EndpointSlices' nodeName (default: the hostname)",
    )
    add_source_options(
        parser,
        kubeconfig="watch the Kubernetes API with this kubeconfig",
        manifests="manifest store directory (Services, EndpointSlices, Node)",
    )
    parser.add_argument(
        "--nodeport-addresses",
        metavar="CIDR[,CIDR...]",
        type=_cidrs,
        default=(),
        help="serve nodePorts only on local addresses inside these IPv4 CIDRs "
        "(default: every local address except loopback)",
    )
    parser.add_argument(
        "--healthz-bind-address",
        metavar="ADDR:PORT",
        type=_address,
        default=None,
        help=f"/healthz and /livez (default: {address_text(DEFAULT_HEALTHZ_ADDRESS)} in standalone "
        "mode, none in companion mode, where kube-proxy holds that port)",
    )
    parser.add_argument(
        "--metrics-bind-address",
        metavar="ADDR:PORT",
        type=_address,
        default=None,
        help=f"Prometheus /metrics (default: {address_text(DEFAULT_METRICS_ADDRESS)} in standalone "
        f"mode, kube-proxy's address; {address_text(COMPANION_METRICS_ADDRESS)} in companion mode)",
    )
    parser.add_argument(
        "--agent-check-port",
        metavar="PORT",
        type=_port,
        default=0,
        help="answer HAProxy agent-checks (agent-send 'namespace/name\\n') on this TCP port "
        "with a weight of 100%% per local ready endpoint, 'drain' or 'down' (default: off)",
    )
    add_node_port_range_option(parser, "for validation")
    parser.add_argument(
        "--sync-period",
        metavar="SECONDS",
        type=float,
        default=30.0,
        help="consistency check / store rescan period; the agent reports unhealthy when a "
        "change waits longer than twice this (default: 30)",
    )
    parser.add_argument(
        "--load-balancer",
        metavar="NAME,MAC,ADDRESS",
        dest="load_balancers",
        type=_load_balancer,
        action="append",
        default=[],
        help="a load balancer in front of this node (repeat for each): replies of the "
        "connections it opens from a client's address go back through it",
    )
    parser.add_argument(
        "--state-file",
        metavar="FILE",
        type=Path,
        help="keep the healthCheckNodePort answers of the last sync here (on a tmpfs such as "
        "/run): an agent restarted while its source cannot be read answers them again over "
        "the table it finds (default: off; the systemd unit sets it)",
    )
    parser.add_argument(
        "--snapshot-file",
        metavar="FILE",
        type=Path,
        help="with --manifests: keep the state of the last sync here (written when the agent "
        "is idle and at stop), so a restart reads only the store files changed since; "
        "ignored when it was made by other code or settings, or does not check out "
        "(default: off; the systemd unit sets it)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.set_defaults(func=run)


COMMANDS = (
    Command(
        "agent",
        configure,
        help="run the node proxy agent (nftables NodePort rules + healthCheckNodePort server)",
        description=DESCRIPTION,
        epilog=EPILOG,
    ),
)


def run(args: argparse.Namespace) -> int:
    from nodeport_lb.agent.daemon import Agent, AgentConfig

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("nodeport_lb.agent")
    signs = dataplane_signs()
    if args.mode == STANDALONE and signs:
        for sign in signs:
            print(
                f"nodeport-lb agent: refusing to start in standalone mode: {sign}", file=sys.stderr
            )
        print(
            "another dataplane (kube-proxy or a replacement) already serves nodePorts and "
            "healthCheckNodePorts on this node: run the agent beside it in companion mode "
            "(--mode companion), or remove it from this node for standalone mode",
            file=sys.stderr,
        )
        return 1
    if args.mode == COMPANION and not signs:
        log.warning(
            "companion mode, but no kube-proxy (or other service proxy) is in sight: nothing "
            "serves nodePorts or healthCheckNodePorts on this node"
        )
    healthz = args.healthz_bind_address
    if healthz is None and args.mode == STANDALONE:
        healthz = DEFAULT_HEALTHZ_ADDRESS
    config = AgentConfig(
        node_name=args.node_name,
        manifests=args.manifests,
        kubeconfig=args.kubeconfig,
        nodeport_cidrs=args.nodeport_addresses,
        mode=args.mode,
        healthz_address=healthz,
        metrics_address=args.metrics_bind_address or METRICS_ADDRESS_BY_MODE[args.mode],
        agent_check_address=("0.0.0.0", args.agent_check_port) if args.agent_check_port else None,
        node_port_range=args.service_node_port_range,
        sync_period=args.sync_period,
        state_file=args.state_file,
        snapshot_file=args.snapshot_file,
        load_balancers=tuple(args.load_balancers),
    )
    try:
        agent = Agent(config)
        return agent.run()
    except (ValueError, BackendUnavailable) as exc:  # two --load-balancer with one address,
        print(f"nodeport-lb agent: {exc}", file=sys.stderr)  # an unusable --kubeconfig
        return 2
    except OSError as exc:
        print(
            f"nodeport-lb agent: cannot start: {exc} (another kube-proxy or agent on this port?)",
            file=sys.stderr,
        )
        log.debug("start failure", exc_info=True)
        return 1


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected ADDR:PORT, got {text!r}")
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{host!r} is not an IP address") from exc
    return host.strip("[]"), _port(port)


def _load_balancer(text: str) -> object:
    from nodeport_lb.agent.peers import LoadBalancerPeer

    try:
        return LoadBalancerPeer.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535)")
    return int(text)


def _cidrs(text: str) -> tuple[str, ...]:
    cidrs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            network = ipaddress.ip_network(part, strict=False)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{part!r} is not a CIDR") from exc
        if network.version != 4:
            raise argparse.ArgumentTypeError(f"{part!r}: only IPv4 is supported for now")
        cidrs.append(str(network))
    return tuple(cidrs)
