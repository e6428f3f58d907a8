# Controller side of nodeport_lb.core.nodeport_unit: one systemctl command asks whether the
# unit is enabled and running; ansible.builtin.systemd_service runs only when it is not, or
# when systemd must re-read its units first.

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from nodeport_lb.remote_state import StateError, unit_as_wanted, unit_probe

ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "enabled": {"type": "bool"},
    "state": {"type": "str", "choices": ["started"], "default": "started"},
    "daemon_reload": {"type": "bool", "default": False},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            probe = unit_probe(args["name"])
        except StateError as error:
            return {**result, "failed": True, "msg": str(error)}
        if not args["daemon_reload"]:
            # is-enabled and is-active exit non-zero for "disabled" and "inactive": the words
            # decide, not the status
            answer = self._low_level_execute_command(probe)
            if unit_as_wanted(answer["stdout"], enabled=args["enabled"], started=True):
                return {**result, "changed": False, "name": args["name"], "state": "started"}
        module_args = {key: value for key, value in args.items() if value is not None}
        return {
            **result,
            **self._execute_module(
                module_name="ansible.legacy.systemd_service",
                module_args=module_args,
                task_vars=task_vars,
            ),
        }
