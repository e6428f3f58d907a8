#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_packages.py):
# it asks dpkg-query over the connection and calls ansible.builtin.apt only when needed.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_packages
short_description: Install the Debian packages a role needs, asking dpkg first
description:
  - Asks C(dpkg-query) which of O(names) a host lacks, as a plain command over the
    connection (no module, no Python started on the host), and runs M(ansible.builtin.apt)
    only when some are missing. A host that has them all costs one command and reports no
    change (an apt run's cache update would count as one).
  - In check mode nothing is installed; RV(pending) is true on a host that lacks some, so the
    calling role can skip the tasks that need their programs and files. Without python3-apt,
    apt cannot even simulate the install; the task then reports a change and says why.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  names:
    description: The Debian packages (checked against Debian Policy's package name rules).
    type: list
    elements: str
    required: true
  needed_by:
    description: What needs the packages, for messages (e.g. HAProxy).
    type: str
    default: these tasks
  install:
    description:
      - false for hosts whose packages are managed otherwise (nothing is asked or installed).
    type: bool
    default: true
seealso:
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Install what HAProxy needs
  nodeport_lb.core.nodeport_packages:
    names: [haproxy, nftables]
    needed_by: HAProxy
  register: haproxy_packages

- name: Tasks that need HAProxy's files skip in check mode until it is installed
  ansible.builtin.systemd_service:
    name: haproxy
    state: started
  when: not haproxy_packages.pending
"""

RETURN = r"""
missing:
  description: The packages of O(names) that were not installed when the task started.
  returned: always
  type: list
  elements: str
pending:
  description: Check mode only; true when some packages are missing (nothing was installed).
  returned: always
  type: bool
"""
