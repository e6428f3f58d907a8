#!/usr/bin/python
# The documentation of an action that runs on the controller (plugins/action/nodeport_files.py):
# one shell command asks the host about every path, ansible.builtin.copy and file write the rest.

from __future__ import annotations

DOCUMENTATION = r"""
module: nodeport_files
short_description: Install a role's files and directories, asking the host first
description:
  - Asks the host in one shell command (C(stat), C(sha1sum)) whether each of O(directories)
    and O(files) already has the wanted content, mode, owner and group. Only the ones that do
    not go through M(ansible.builtin.file) (directories) and M(ansible.builtin.copy) (files),
    which validate, write atomically, and support check mode and diff as a task of their own
    would. A host where everything is in place costs one command and no Python start.
  - Directories come first, then the files in the order given; the task stops at the first
    path that fails (a file that fails its O(files[].validate) command is not written).
  - A symlink is never taken as in place; M(ansible.builtin.copy) decides what to do with it.
version_added: "0.1.0"
author: nodeport-lb maintainers (@nodeport-lb)
extends_documentation_fragment: nodeport_lb.core.nodeport_probing
options:
  files:
    description: Files to install.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path on the host.
        type: str
        required: true
      content:
        description: The file's text (e.g. from the ansible.builtin.template lookup).
        type: str
      src:
        description: A file on the controller, copied as is (binary allowed).
        type: str
      mode:
        description: Octal mode, such as C("0644").
        type: str
        required: true
      owner:
        description: Owner (name or id).
        type: str
        default: root
      group:
        description: Group (name or id).
        type: str
        default: root
      validate:
        description:
          - Command that checks the new file (C(%s) is its path) before it replaces the old one.
        type: str
      secret:
        description: The file holds a secret; its content is left out of the diff and the result.
        type: bool
        default: false
  directories:
    description: Directories to create (with missing parents).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path on the host.
        type: str
        required: true
      mode:
        description: Octal mode.
        type: str
        default: "0755"
      owner:
        description: Owner (name or id).
        type: str
        default: root
      group:
        description: Group (name or id).
        type: str
        default: root
attributes:
  diff_mode:
    support: full
    description: Shows the changed files as a diff.
seealso:
  - module: ansible.builtin.copy
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Write haproxy.cfg (checked with haproxy -c before it lands)
  nodeport_lb.core.nodeport_files:
    directories:
      - path: /etc/haproxy
    files:
      - dest: /etc/haproxy/haproxy.cfg
        content: "{{ lookup('ansible.builtin.template', 'haproxy.cfg.j2') }}"
        mode: "0644"
        validate: haproxy -c -f %s
  register: haproxy_files
  notify: Reload haproxy
"""

RETURN = r"""
changed_paths:
  description: The directories and files this task changed (or would change, in check mode).
  returned: always
  type: list
  elements: str
"""
