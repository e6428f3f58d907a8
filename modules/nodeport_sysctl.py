#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_sysctl.py):
# one shell command reads the file and the running values, then only what differs is set.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_sysctl
short_description: Set kernel parameters now and at boot, asking the host first
description:
  - Reads in one shell command the state of O(sysctl_file) and the running values of
    O(settings). The file (one C(name = value) line per parameter) is written through
    M(ansible.builtin.copy) when it differs; a running value that differs is set with
    C(sysctl -w). A host where both are in place costs that one command.
  - Names and values are checked before they reach a shell or the file.
  - In check mode nothing is set or written; the task reports what would change.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  settings:
    description: Parameter names (dotted, such as C(net.ipv4.ip_nonlocal_bind)) and values.
    type: dict
    required: true
  sysctl_file:
    description: The file under C(/etc/sysctl.d) that sets them at boot.
    type: str
    required: true
attributes:
  diff_mode:
    support: full
    description: Shows the changed files as a diff.
notes:
  - ansible.posix.sysctl does the same one parameter at a time; ansible-core has no sysctl module.
"""

EXAMPLES = r"""
- name: Let HAProxy bind VIPs this host does not hold (now and persisted)
  nodeport_lb.core.nodeport_sysctl:
    settings:
      net.ipv4.ip_nonlocal_bind: 1
    sysctl_file: /etc/sysctl.d/60-nodeport-lb-haproxy.conf
"""

RETURN = r"""
changed_paths:
  description: The sysctl file when it was (or would be) written.
  returned: always
  type: list
  elements: str
set_now:
  description: The parameters whose running values were (or would be) set.
  returned: always
  type: list
  elements: str
"""
