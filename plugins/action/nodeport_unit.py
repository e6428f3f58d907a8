# Controller side of nodeport_lb.core.nodeport_unit: one systemctl command asks whether the
# unit is enabled and running; ansible.builtin.systemd_service runs only when it is not, or
# when systemd must re-read its units first.

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import ProbingAction

from nodeport_lb.remote_state import unit_as_wanted, unit_probe


class ActionModule(ProbingAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "name": {"type": "str", "required": True},
        "enabled": {"type": "bool"},
        "state": {"type": "str", "choices": ["started"], "default": "started"},
        "daemon_reload": {"type": "bool", "default": False},
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        probe = unit_probe(args["name"])
        # is-enabled and is-active exit non-zero for "disabled" and "inactive": the words
        # decide, not the status
        if not args["daemon_reload"]:
            answer = self._low_level_execute_command(probe)
            if unit_as_wanted(answer["stdout"], enabled=args["enabled"]):
                return {"changed": False, "name": args["name"], "state": "started"}
        return self._execute_module(
            module_name="ansible.legacy.systemd_service",
            module_args={key: value for key, value in args.items() if value is not None},
            task_vars=task_vars,
        )
