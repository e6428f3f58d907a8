#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_unit.py):
# one systemctl command asks first, ansible.builtin.systemd_service acts when needed.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_unit
short_description: Enable and start a systemd unit, asking systemctl first
description:
  - Asks C(systemctl is-enabled) and C(systemctl is-active) in one command over the
    connection. A unit that is enabled (when O(enabled) is set) and active costs that command
    and reports no change; otherwise, and always when O(daemon_reload) is true,
    M(ansible.builtin.systemd_service) runs with the same options and its result is returned.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  name:
    description: The unit.
    type: str
    required: true
  enabled:
    description: Whether the unit starts at boot; unset leaves it as it is.
    type: bool
  state:
    description: Only C(started); restarts and reloads are the roles' handlers.
    type: str
    choices: [started]
    default: started
  daemon_reload:
    description: Reload systemd's units first (after a unit file changed).
    type: bool
    default: false
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Enable and start keepalived
  nodeport_lb.core.nodeport_unit:
    name: keepalived
    enabled: true
    state: started
"""

RETURN = r"""
name:
  description: The unit.
  returned: always
  type: str
"""
