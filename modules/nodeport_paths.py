#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_paths.py):
# one shell command over the connection, no module started on the host.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_paths
short_description: Tell what each of a few paths on the host is, in one command
description:
  - For each of O(paths), after symlinks, whether it is a regular file, a directory,
    something else or absent, asked in one shell command (no Python started on the host).
  - Only looks, so it runs in check mode as in a real run.
  - A host whose answer cannot be read fails the task; it never reads as "absent".
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  paths:
    description: Absolute paths.
    type: list
    elements: str
    required: true
seealso:
  - module: ansible.builtin.stat
"""

EXAMPLES = r"""
- name: Look for the agent and the manifest store
  nodeport_lb.core.nodeport_paths:
    paths: [/opt/nodeport-lb/venv/bin/nodeport-lb, /var/lib/nodeport-lb/manifests]
  register: found

- name: Require the store
  ansible.builtin.assert:
    that: found.kinds['/var/lib/nodeport-lb/manifests'] == 'directory'
"""

RETURN = r"""
kinds:
  description: Path -> C(file), C(directory), C(other) or C(absent).
  returned: success
  type: dict
"""
