#!/usr/bin/python
# Thin Ansible wrapper: the model, validation, allocation and backends live in the nodeport_lb
# package (src/nodeport_lb), which this module imports on the controller.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_service
short_description: Render, validate and apply a Service with nodePorts and healthCheckNodePort
description:
  - Describes a v1 Service of type NodePort or LoadBalancer once, validates it with the
    Kubernetes API server's own rules and messages before anything is touched, applies it to a
    manifest store or a Kubernetes API server, and returns the allocated nodePorts and
    healthCheckNodePort for the rest of the playbook (HAProxy backends, cloud load balancers).
  - With O(external_traffic_policy=Local) and O(type=LoadBalancer) the Service gets a
    healthCheckNodePort; every node answers HTTP 200 on it when it has a local ready pod and 503
    otherwise. Load balancers must health-check that port over HTTP, never TCP.
  - Give the Service either as options (O(name), O(ports), ...) or as a raw manifest in
    O(definition).
  - Supports check mode (reports what would change, changes nothing) and diff mode.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_store
options:
  state:
    description: V(present) creates or updates the Service; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  definition:
    description:
      - A complete v1 Service manifest (as C(kubectl get -o yaml) prints it). Mutually exclusive
        with the Service options below.
    type: dict
  service:
    description:
      - The Service's options below as one dict, as an entry of the services role's
        C(nodeport_lb_services) holds them; keys that are not options of a Service (such as
        its C(load_balancer) settings) are left out. Mutually exclusive with O(definition)
        and O(name).
      - Checked as the options themselves are, with the same types, choices and defaults.
    type: dict
  # Service options: written from nodeport_lb.model's tables by scripts/module_docs.py
  name:
    description:
      - Service name (a DNS-1035 label). Required unless O(definition) is given.
    type: str
  namespace:
    description:
      - Namespace of the Service.
    type: str
    default: default
  type:
    description:
      - Service type. As on the API server, V(ClusterIP) when omitted (which has no nodePort).
    type: str
    choices: ["ClusterIP", "NodePort", "LoadBalancer"]
  selector:
    description:
      - Pod labels the Service selects.
    type: dict
  ports:
    description:
      - Service ports. With more than one port, every port needs a O(ports[].name).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - Port name (a DNS-1123 label); the key of RV(node_ports).
        type: str
      port:
        description:
          - Port of the Service (and of the load balancer in front of it).
        type: int
        required: true
      target_port:
        description:
          - Port (number or name) on the pods. Defaults to O(ports[].port).
        type: raw
      node_port:
        description:
          - Port opened on every node, in O(service_node_port_range). Allocated when omitted, and
            kept stable across runs.
        type: int
      protocol:
        description:
          - Protocol.
        type: str
        choices: ["TCP", "UDP", "SCTP"]
        default: TCP
      app_protocol:
        description:
          - The port's application protocol (C(appProtocol)), for example V(http) or
            V(kubernetes.io/h2c); some cloud load balancers pick their health check by it.
        type: str
  external_traffic_policy:
    description:
      - V(Local) keeps the client's source IP and only nodes with a local pod take traffic;
        V(Cluster) (the API server's default) spreads over all pods but SNATs.
    type: str
    choices: ["Cluster", "Local"]
  health_check_node_port:
    description:
      - Explicit healthCheckNodePort (only for O(type=LoadBalancer) with
        O(external_traffic_policy=Local)). Allocated when omitted, kept stable across runs, and
        released when the Service goes back to Cluster.
    type: int
  internal_traffic_policy:
    description:
      - Policy for traffic from inside the cluster.
    type: str
    choices: ["Cluster", "Local"]
  session_affinity:
    description:
      - V(ClientIP) sends a client to the same pod for O(session_affinity_timeout).
    type: str
    choices: ["None", "ClientIP"]
  session_affinity_timeout:
    description:
      - ClientIP affinity timeout in seconds (1..86400; API default 10800).
    type: int
  allocate_load_balancer_node_ports:
    description:
      - For LoadBalancer Services, whether nodePorts are allocated (API default true).
    type: bool
  load_balancer_source_ranges:
    description:
      - Client CIDRs allowed to reach a LoadBalancer Service; others are dropped.
    type: list
    elements: str
  labels:
    description:
      - Labels of the Service object.
    type: dict
  annotations:
    description:
      - Annotations of the Service object.
    type: dict
  # end of the Service options
  service_ip_families:
    description:
      - The IP families your cluster serves Services in, its default one first, as its API
        server's C(--service-cluster-ip-range) lists them.
      - C(ipFamilies), C(ipFamilyPolicy) and C(clusterIPs) are checked against them before
        anything is applied, with the API server's messages (for example V(RequireDualStack)
        on a single-stack cluster). Set V([IPv4, IPv6]) for a dual-stack cluster.
    type: list
    elements: str
    choices: [IPv4, IPv6]
    default: [IPv4]
  force_conflicts:
    description:
      - With a Kubernetes API server, take over the fields of the Service that another field
        manager (Helm, Argo CD, kubectl) set to a different value, as
        C(kubectl apply --server-side --force-conflicts) does.
      - When V(false), such a conflict fails the task with the API server's message naming the
        fields and their manager, and changes nothing; check mode reports it too.
      - A manifest store has no field managers; the option changes nothing there.
    type: bool
    default: false
notes:
  # the refusal note: written from nodeport_lb.defaults by scripts/module_docs.py
  - "Invalid input fails the task with the API server's message, for example
    C(spec.ports[0].nodePort: Invalid value: 29999: provided port is not in the valid range.
    The range of valid ports is 30000-32767), and changes nothing. The checks are those of
    Kubernetes 1.33 with its default feature gates, in the API server's order."
  # end of the refusal note
  - "In check mode the node ports reported are the ones the run will allocate. A Kubernetes
    API server picks free ports at random, so there check mode leaves a port it would pick out
    of RV(node_ports) and RV(health_check_node_port) and names it in RV(to_be_allocated)."
seealso:
  - module: nodeport_lb.core.nodeport_service_info
"""

EXAMPLES = r"""
- name: A LoadBalancer Service with externalTrafficPolicy Local, in the lab's manifest store
  nodeport_lb.core.nodeport_service:
    store: "{{ nodeport_lb_store }}"
    name: python-lb
    type: LoadBalancer
    external_traffic_policy: Local
    selector:
      app: python
    ports:
      - name: http
        port: 80
        target_port: 31000
        node_port: 31001
  register: python_lb
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"

- name: Use the allocated healthCheckNodePort
  ansible.builtin.debug:
    msg: "check nodes over HTTP on {{ python_lb.health_check_node_port }}"

- name: A NodePort Service from a raw manifest, applied to a cluster through a kubeconfig
  nodeport_lb.core.nodeport_service:
    store:
      kubeconfig: ~/.kube/config
      context: prod
    definition:
      apiVersion: v1
      kind: Service
      metadata:
        name: test-python
      spec:
        type: NodePort
        externalTrafficPolicy: Local
        selector: {app: python}
        ports:
          - port: 31000
            targetPort: 31000
            nodePort: 31000

- name: Remove a Service
  nodeport_lb.core.nodeport_service:
    store: "{{ nodeport_lb_store }}"
    name: python-lb
    state: absent
"""

RETURN = r"""
service:
  description: The Service as applied (or as it would be, in check mode); empty after deletion.
  returned: always
  type: dict
  sample:
    apiVersion: v1
    kind: Service
    metadata: {name: python-lb, namespace: default}
    spec:
      type: LoadBalancer
      externalTrafficPolicy: Local
      healthCheckNodePort: 31897
      ports: [{name: http, port: 80, targetPort: 31000, nodePort: 31001, protocol: TCP}]
node_ports:
  description: Allocated nodePorts by port name (by port number for an unnamed port).
  returned: always
  type: dict
  sample: {http: 31001}
health_check_node_port:
  description:
    - The healthCheckNodePort load balancers must check over HTTP; null unless the Service is
      LoadBalancer with externalTrafficPolicy Local.
  returned: always
  type: int
  sample: 31897
to_be_allocated:
  description:
    - In check mode, the fields whose value the real run will allocate and that cannot be
      known beforehand (empty otherwise); they are left out of RV(service), RV(node_ports)
      and RV(health_check_node_port).
  returned: always
  type: list
  elements: str
  sample: ["spec.ports[0].nodePort", "spec.healthCheckNodePort"]
"""

import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator  # noqa: E402

try:
    from nodeport_lb.ansible_support import STORE_ARGUMENT_SPEC, backend_from_params
    from nodeport_lb.model import NodePortRange, service_argument_spec, service_option_names
    from nodeport_lb.services import BackendError, InvalidService, prepare_service, service_facts

    IMPORT_ERROR = None
except ImportError:
    IMPORT_ERROR = traceback.format_exc()


def argument_spec() -> dict:
    # The Service options are declared once, in nodeport_lb.model (tests hold the
    # documentation above to the same table).
    return {
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "definition": {"type": "dict"},
        "service": {"type": "dict"},
        **service_argument_spec(),
        "service_ip_families": {
            "type": "list",
            "elements": "str",
            "choices": ["IPv4", "IPv6"],
            "default": ["IPv4"],
        },
        "force_conflicts": {"type": "bool", "default": False},
        **STORE_ARGUMENT_SPEC,
    }


def service_options(module: AnsibleModule) -> dict:
    """The Service options: the task's own, or those of O(service) checked by the same
    argument spec (the services role passes its entry whole, so no option is listed twice)."""
    params = module.params
    if params["service"] is None:
        return {name: params[name] for name in service_option_names()}
    names = set(service_option_names())
    given = {k: v for k, v in params["service"].items() if k in names}
    result = ArgumentSpecValidator(service_argument_spec()).validate(given)
    if result.error_messages:
        module.fail_json(msg="service: " + "; ".join(result.error_messages))
    return result.validated_parameters


def main() -> None:
    if IMPORT_ERROR:
        from ansible_collections.nodeport_lb.core.plugins.module_utils.package import (
            fail_without_package,
        )

        fail_without_package(IMPORT_ERROR)
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("definition", "name"), ("service", "definition"), ("service", "name")],
        required_one_of=[("definition", "name", "service")],
        supports_check_mode=True,
    )
    params = module.params
    options = service_options(module)
    try:
        backend = backend_from_params(params)
        if params["state"] == "absent":
            namespace, name = options["namespace"], options["name"]
            if params["definition"]:
                meta = params["definition"].get("metadata") or {}
                namespace, name = meta.get("namespace") or "default", meta.get("name")
            result = backend.delete(namespace, name, check_mode=module.check_mode)
        else:
            node_port_range = NodePortRange.parse(params["service_node_port_range"])
            families = params["service_ip_families"]
            if not 1 <= len(families) <= 2 or len(set(families)) != len(families):
                module.fail_json(msg=f"service_ip_families: one or two families, got {families}")
            manifest = prepare_service(
                node_port_range,
                options=options,
                definition=params["definition"],
                ip_families=families,
            )
            result = backend.apply(
                manifest,
                check_mode=module.check_mode,
                force_conflicts=params["force_conflicts"],
            )
    except InvalidService as exc:
        module.fail_json(msg=str(exc), errors=exc.errors)
    except (BackendError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # a backend's own errors (API unreachable, store unwritable)
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", exception=traceback.format_exc())

    output = {
        "changed": result.changed,
        **service_facts(result.after),
        "to_be_allocated": result.to_be_allocated,
    }
    if module._diff:
        output["diff"] = result.diff
    module.exit_json(**output)


if __name__ == "__main__":
    main()
