# What the nodeport_lb.core modules share on their side of the nodeport_lb package, which they
# import on the controller: without it their options are unknown, and the task should say
# how to get the package rather than fail on a parameter.

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, _load_params

PACKAGE_MISSING = (
    "the nodeport_lb package is not importable by this Python; run the module on the "
    'controller with ansible_python_interpreter: "{{ ansible_playbook_python }}" after '
    "pip install nodeport-lb"
)


def fail_without_package(import_error: str) -> None:
    """Fail the task with the package's import traceback, whatever options it was given."""
    given = [name for name in _load_params() if not name.startswith("_ansible_")]
    module = AnsibleModule(
        argument_spec={name: {"type": "raw"} for name in given}, supports_check_mode=True
    )
    module.fail_json(msg=PACKAGE_MISSING, exception=import_error)
