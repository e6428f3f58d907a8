"""Ansible filters for the load-balancer roles: thin wrappers over nodeport_lb.loadbalancer,
where the planning and validation live (and are tested directly).

    {{ services | nodeport_lb_haproxy_plan(nodes, vips, settings) }}
    {{ vips | nodeport_lb_keepalived_plan(inventory_hostname, lbs, ansible_facts, settings) }}
    {{ groups['nodes'] | map('extract', hostvars) | nodeport_lb_hosts }}
    {{ {'node_name': ..., 'manifests': ...} | nodeport_lb_agent_args }}
    {{ validation_results | nodeport_lb_applied_services(apply_results) }}
    {{ groups['lbs'] | map('extract', hostvars) | nodeport_lb_return_path_peers }}
"""

from __future__ import annotations

import itertools
from typing import Any

from ansible.errors import AnsibleFilterError

# Each filter imports what it wraps when it runs: Ansible loads this file in every worker
# process that templates any one of them, and a worker needs only its own filter's module.

SERVICES_PLAY_NOT_RUN = (
    "nodeport_lb_applied_services is not set: run site.yml's Services play first (it runs on "
    "localhost, tag services), or set nodeport_lb_haproxy_services."
)


def haproxy_plan(services: Any, nodes: Any, vips: Any, settings: Any = None) -> dict[str, Any]:
    from nodeport_lb.loadbalancer import PlanError, plan_haproxy

    if services is None:
        raise AnsibleFilterError(SERVICES_PLAY_NOT_RUN)
    try:
        return plan_haproxy(services, nodes, vips, settings).to_dict()
    except PlanError as error:
        raise AnsibleFilterError(str(error)) from None


def keepalived_plan(
    vips: Any, host: str, lbs: Any, facts: Any = None, settings: Any = None
) -> dict[str, Any]:
    from nodeport_lb.loadbalancer import PlanError, plan_keepalived

    try:
        return plan_keepalived(vips, host, lbs, facts, settings).to_dict()
    except PlanError as error:
        raise AnsibleFilterError(str(error)) from None


def agent_args(settings: dict[str, Any]) -> list[str]:
    from nodeport_lb.loadbalancer import PlanError
    from nodeport_lb.node_proxy import agent_arguments

    try:
        return agent_arguments(**settings)
    except PlanError as error:
        raise AnsibleFilterError(str(error)) from None


def hosts(hostvars: Any, address_var: str = "nodeport_lb_node_address") -> list[dict[str, Any]]:
    from nodeport_lb.loadbalancer import hosts_from_inventory

    return hosts_from_inventory(hostvars, address_var)


def return_path_peers(hostvars: Any, address_var: str = "nodeport_lb_lb_address") -> list[str]:
    from nodeport_lb.loadbalancer import PlanError
    from nodeport_lb.node_proxy import load_balancer_peers

    try:
        return load_balancer_peers(hostvars, address_var)
    except PlanError as error:
        raise AnsibleFilterError(str(error)) from None


def applied_services(validated: Any, applied: Any = None) -> list[dict[str, Any]]:
    """nodeport_service's loop results -> nodeport_lb_applied_services (deleted ones left out).

    ``validated``: the check-mode pass over every Service; ``applied``: the pass that applied
    the ones it found to change, in the same order. A Service skipped there needed no change,
    so what the validation read is what the store holds."""
    from nodeport_lb.services import AppliedService

    chosen = [
        done if done and not done.get("skipped") else checked
        for checked, done in itertools.zip_longest(validated, applied or [])
    ]
    return [
        AppliedService.from_result(r["item"], r["service"], r.get("to_be_allocated") or ()).to_fact(
            r["item"]
        )
        for r in chosen
        if r.get("service")
    ]


def managed_load_balancers(entries: Any) -> dict[str, Any]:
    """nodeport_lb_services -> the doctor's load_balancers option (namespace/name -> settings)."""
    from nodeport_lb.doctor.inventory import managed_load_balancers as by_service

    try:
        return by_service(entries)
    except (KeyError, TypeError, AttributeError) as error:
        raise AnsibleFilterError(
            f"nodeport_lb_services: an entry without a name: {error}"
        ) from None


def wheel_targets(facts: Any) -> list[str]:
    """The distinct PYTHON_VERSION/ARCH of some hosts' facts, for the agent's wheelhouse."""
    from nodeport_lb.wheelhouse import targets_of

    try:
        return targets_of(facts)
    except (KeyError, TypeError) as error:
        message = f"a node's facts lack python.version or architecture: {error}"
        raise AnsibleFilterError(message) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "nodeport_lb_haproxy_plan": haproxy_plan,
            "nodeport_lb_keepalived_plan": keepalived_plan,
            "nodeport_lb_hosts": hosts,
            "nodeport_lb_agent_args": agent_args,
            "nodeport_lb_applied_services": applied_services,
            "nodeport_lb_return_path_peers": return_path_peers,
            "nodeport_lb_wheel_targets": wheel_targets,
            "nodeport_lb_managed_load_balancers": managed_load_balancers,
        }
