# Controller side of nodeport_lb.core.nodeport_paths: what each path is, in one shell command
# over the connection (ansible.builtin.stat starts Python on the host once per path).

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase

from nodeport_lb.remote_state import StateError, kinds_probe, path_kinds

ARGUMENT_SPEC = {"paths": {"type": "list", "elements": "str", "required": True}}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            command = kinds_probe(args["paths"])
        except StateError as error:
            return {**result, "failed": True, "msg": str(error)}
        answer = self._low_level_execute_command(command)
        kinds = path_kinds(answer["stdout"], args["paths"]) if answer["rc"] == 0 else None
        if kinds is None:
            # a source that cannot be read is an error, never "nothing there"
            message = f"could not look at {', '.join(args['paths'])}: {answer['stderr'].strip()}"
            return {**result, "failed": True, "msg": message}
        return {**result, "changed": False, "kinds": kinds}
