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
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

try:
    from nodeport_lb.ansible_support import STORE_ARGUMENT_SPEC, backend_from_params
    from nodeport_lb.services import BackendError, service_facts

    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()
    STORE_ARGUMENT_SPEC = {"store": {"type": "raw"}, "service_node_port_range": {"type": "raw"}}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str"},
            "namespace": {"type": "str"},
            **STORE_ARGUMENT_SPEC,
        },
        supports_check_mode=True,
    )
    if IMPORT_ERROR:
        module.fail_json(
            msg="the nodeport_lb package is not importable by this Python; run the module on the "
            'controller with ansible_python_interpreter: "{{ ansible_playbook_python }}"',
            exception=IMPORT_ERROR,
        )
    name, namespace = module.params["name"], module.params["namespace"]
    try:
        backend = backend_from_params(module.params)
        if name:
            found = backend.get(namespace or "default", name)
            services = [found] if found else []
        else:
            services = backend.list()
    except BackendError as exc:
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
    module.exit_json(changed=False, services=facts)


if __name__ == "__main__":
    main()
