# The attributes shared by the actions that ask the host in one shell command before they run
# any module (nodeport_packages, _files, _unit, _sysctl, _paths and _facts).


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    description: Can run in check mode and tell what would change without changing it.
  action:
    support: full
    description: Runs on the controller, asking the host over the task's connection.
notes:
  - The question to the host is one shell command (coreutils, C(dpkg-query), C(systemctl),
    C(sysctl) or C(ip)). A host where nothing is to do starts no Python for this task.
"""
