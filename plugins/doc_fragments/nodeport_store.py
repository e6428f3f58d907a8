# The `store` and `service_node_port_range` options shared by nodeport_service and
# nodeport_service_info (one copy, pulled in with extends_documentation_fragment).


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  store:
    description:
      - Where Services live. Either a manifest store (a directory of Kubernetes objects, the
        standalone control plane that the nodeport-lb agent reads; give O(store.path)) or a
        Kubernetes API server (give any of the connection settings below, or nothing for
        the K8S_AUTH_* environment or in-cluster configuration).
      - In the lab this is set for you by the inventory variable C(nodeport_lb_store).
    type: dict
    required: true
    suboptions:
      path:
        description:
          - Manifest store directory. Node ports and the healthCheckNodePort are allocated like
            the API server does, from one pool, under a file lock.
        type: path
      kubeconfig:
        description:
          - Path to a kubeconfig file, or the kubeconfig itself as a dict.
          - Defaults to E(K8S_AUTH_KUBECONFIG), then C(~/.kube/config), then in-cluster.
        type: raw
      context:
        description: Kubeconfig context to use (E(K8S_AUTH_CONTEXT)).
        type: str
      host:
        description: API server URL (E(K8S_AUTH_HOST)).
        type: str
      api_key:
        description: Bearer token (E(K8S_AUTH_API_KEY)).
        type: str
      username:
        description: Basic-auth user name (E(K8S_AUTH_USERNAME)).
        type: str
      password:
        description: Basic-auth password (E(K8S_AUTH_PASSWORD)).
        type: str
      validate_certs:
        description: Verify the API server's certificate (E(K8S_AUTH_VERIFY_SSL)).
        type: bool
      ca_cert:
        description: CA bundle for the API server (E(K8S_AUTH_SSL_CA_CERT)).
        type: path
      client_cert:
        description: Client certificate (E(K8S_AUTH_CERT_FILE)).
        type: path
      client_key:
        description: Client certificate's key (E(K8S_AUTH_KEY_FILE)).
        type: path
  service_node_port_range:
    description:
      - The API server's C(--service-node-port-range), C(LOW-HIGH). nodePorts and
        healthCheckNodePort outside it are refused with the API server's message.
    type: str
    # the default range: written from nodeport_lb.defaults by scripts/module_docs.py
    default: "30000-32767"
    # end of the default range
requirements:
  - >-
    The nodeport-lb Python package on the controller. Run the module there with
    C(ansible_python_interpreter: "{{ ansible_playbook_python }}"), as kubernetes.core does.
"""
