#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_facts.py):
# one shell command over the connection, no module started on the host.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_facts
short_description: The network, CPU and Python facts the roles need, in one command
description:
  - Reads a host's interfaces and IPv4 addresses (C(ip -j addr show)), its CPU (C(uname -m))
    and the version of O(python), in one shell command, and sets them as facts under the names
    M(ansible.builtin.setup) gives them, with the fields the roles read -
    C(ansible_facts.interfaces); per interface C(device), C(macaddress), C(ipv4) (address,
    netmask, network, prefix) and C(ipv4_secondaries); C(architecture); C(python.version).
  - For everything else setup gathers, run M(ansible.builtin.setup).
  - A host whose answer cannot be read fails the task; it never has "no interfaces".
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  python:
    description: The host's Python whose version is reported.
    type: str
    default: python3
requirements:
  - iproute2 4.13 or later on the host (C(ip -j)), as on every supported Debian
seealso:
  - module: ansible.builtin.setup
"""

EXAMPLES = r"""
- name: Gather the facts the roles read
  nodeport_lb.core.nodeport_facts:
"""

RETURN = r"""
ansible_facts:
  description: C(interfaces), one entry per interface, C(architecture) and C(python.version).
  returned: success
  type: dict
"""
