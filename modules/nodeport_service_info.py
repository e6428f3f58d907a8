#!/usr/bin/python
# Thin Ansible wrapper over nodeport_lb.services: reads Services, changes nothing.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_service_info
short_description: Read Services with their nodePorts and healthCheckNodePort
description:
  - Returns existing Services from a manifest store or a Kubernetes API server with the same
    facts as M(nodeport_lb.core.nodeport_service) returns (the object, C(node_ports),
    C(health_check_node_port)), for plays that configure load balancers in front of Services
    they did not create.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_store
options:
  name:
    description: Only this Service. All Services when omitted.
    type: str
  namespace:
    description: Only Services in this namespace (with O(name), the Service's namespace).
    type: str
  doctor:
    description:
      - Also run C(nodeport-lb doctor)'s checks on each returned Service and return its
        C(findings); each finding is also shown as a warning. Reads Services, EndpointSlices,
        Pods, Nodes, their ReplicaSets, Deployments and StatefulSets (read-only).
    type: bool
    default: false
  load_balancer:
    description:
      - The Service's own C(load_balancer) settings from the inventory, as the haproxy role
        reads them. With them doctor knows nodeport-lb's HAProxy is in front (its agent-check
        weighs nodes by their pods, its check timing bounds the pods' termination grace).
      - Only with O(name).
    type: dict
  load_balancers:
    description:
      - Several Services at once, each with its own C(load_balancer) settings (or null), by
        C(namespace/name), as the services role manages them - only these are returned and,
        with O(doctor), diagnosed, in one call (doctor then also knows the HAProxy fronts of
        all of them).
      - Not with O(name), O(namespace) or O(load_balancer).
    type: dict
  haproxy_check:
    description: The HAProxy check timing in front, as the haproxy role's variables give it.
    type: dict
    suboptions:
      inter:
        description: C(nodeport_lb_haproxy_inter) (an HAProxy time; the role's default when null).
        type: str
      fall:
        description: C(nodeport_lb_haproxy_fall) (the role's default when null).
        type: int
seealso:
  - module: nodeport_lb.core.nodeport_service
"""

EXAMPLES = r"""
- name: Every Service in the lab's manifest store
  nodeport_lb.core.nodeport_service_info:
    store: "{{ nodeport_lb_store }}"
  register: services
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: One Service's healthCheckNodePort
  nodeport_lb.core.nodeport_service_info:
    store: {kubeconfig: ~/.kube/config}
    name: python-lb
    namespace: default
  register: python_lb

- ansible.builtin.debug:
    msg: "{{ python_lb.services[0].health_check_node_port }}"

- name: What doctor says about it (also printed as warnings)
  nodeport_lb.core.nodeport_service_info:
    store: "{{ nodeport_lb_store }}"
    name: python-lb
    doctor: true
  register: python_lb_doctor
"""

RETURN = r"""
services:
  description: The matching Services, sorted by namespace and name (empty when none matches).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Service name.
      type: str
    namespace:
      description: Service namespace.
      type: str
    service:
      description: The Service object.
      type: dict
    node_ports:
      description: nodePorts by port name (by port number for an unnamed port).
      type: dict
      sample: {http: 31001}
    health_check_node_port:
      description: healthCheckNodePort, null unless LoadBalancer with eTP Local.
      type: int
      sample: 31897
    findings:
      description:
        - With O(doctor), what doctor found about this Service, its pods and workloads
          (empty when nothing), each with C(severity) (error, warning, hint), C(object),
          C(check), C(message), C(fix) and, when there is a stanza to merge, C(patch).
      returned: when O(doctor) is true
      type: list
      elements: dict
set_aside:
  description: With O(doctor), the objects of the source that could not be read, and why.
  returned: when O(doctor) is true
  type: list
  elements: str
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:
    from nodeport_lb.ansible_support import STORE_ARGUMENT_SPEC, backend_from_params
    from nodeport_lb.doctor import SourceUnreadable, read_source
    from nodeport_lb.doctor.inventory import findings_for
    from nodeport_lb.loadbalancer import PlanError
    from nodeport_lb.services import BackendError, service_facts

    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()


LOAD_BALANCER_OPTIONS = ("name", "namespace", "load_balancer")


def service_key(key: str) -> tuple[str, str]:
    """(namespace, name) of a O(load_balancers) key, "namespace/name"."""
    namespace, slash, name = key.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise ValueError(f"load_balancers: {key!r} is not namespace/name")
    return namespace, name


def main() -> None:
    if IMPORT_ERROR:
        from ansible_collections.nodeport_lb.core.plugins.module_utils.package import (
            fail_without_package,
        )

        fail_without_package(IMPORT_ERROR)
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str"},
            "namespace": {"type": "str"},
            "doctor": {"type": "bool", "default": False},
            "load_balancer": {"type": "dict"},
            "load_balancers": {"type": "dict"},
            "haproxy_check": {
                "type": "dict",
                "options": {"inter": {"type": "str"}, "fall": {"type": "int"}},
            },
            **STORE_ARGUMENT_SPEC,
        },
        mutually_exclusive=[("load_balancers", option) for option in LOAD_BALANCER_OPTIONS],
        supports_check_mode=True,
    )
    name, namespace = module.params["name"], module.params["namespace"]
    managed = module.params["load_balancers"]
    try:
        backend = backend_from_params(module.params)
        if managed is not None:
            keys = [service_key(key) for key in managed]
            services = [found for found in (backend.get(*key) for key in keys) if found]
        elif name:
            found = backend.get(namespace or "default", name)
            services = [found] if found else []
        else:
            services = backend.list()
    except (BackendError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # anything else is a bug: keep the traceback for the report
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", exception=traceback.format_exc())

    facts = []
    for svc in services:
        meta = svc.get("metadata") or {}
        if namespace and (meta.get("namespace") or "default") != namespace:
            continue
        facts.append(
            {"name": meta.get("name"), "namespace": meta.get("namespace"), **service_facts(svc)}
        )
    facts.sort(key=lambda f: (f["namespace"] or "", f["name"] or ""))
    if not module.params["doctor"]:
        module.exit_json(changed=False, services=facts)
    try:
        snapshot = read_source(module.params["store"], namespace)
        check = module.params["haproxy_check"] or {}
        if managed is not None:
            load_balancers = {"/".join(service_key(key)): value for key, value in managed.items()}
        elif name:
            load_balancers = {
                f"{f['namespace']}/{f['name']}": module.params["load_balancer"] for f in facts
            }
        else:
            load_balancers = {}
        by_service = findings_for(
            snapshot,
            [f["service"] for f in facts],
            load_balancers,
            check.get("inter"),
            check.get("fall"),
        )
    except (SourceUnreadable, PlanError) as exc:
        module.fail_json(msg=f"doctor: {exc}")
    for fact in facts:
        findings = by_service.get(f"{fact['namespace']}/{fact['name']}", [])
        fact["findings"] = [f.to_dict() for f in findings]
        for finding in findings:
            module.warn(f"doctor: {finding.line()}")
    for problem in snapshot.set_aside:
        module.warn(f"doctor: set aside {problem}")
    module.exit_json(changed=False, services=facts, set_aside=snapshot.set_aside)


if __name__ == "__main__":
    main()
