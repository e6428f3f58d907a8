# Controller side of nodeport_lb.core.nodeport_sysctl (ansible-core has no sysctl module; the
# one in ansible.posix is not installed with it): one shell command reads the sysctl.d file's
# state and the running values; the file goes through Ansible's copy action and a value
# through `sysctl -w` only when they differ.

from __future__ import annotations

import shlex
from typing import Any

from ansible_collections.nodeport_lb.core.plugins.action.nodeport_files import WantedStateAction

from nodeport_lb.remote_state import (
    StateError,
    sysctl_file_content,
    sysctl_probe,
    sysctl_setting,
    sysctl_values,
)

ARGUMENT_SPEC = {
    "settings": {"type": "dict", "required": True},
    "sysctl_file": {"type": "str", "required": True},
}


class ActionModule(WantedStateAction):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            settings = [sysctl_setting(name, str(v)) for name, v in args["settings"].items()]
            file = {
                "dest": args["sysctl_file"],
                "content": sysctl_file_content(settings),
                "mode": "0644",
                "owner": "root",
                "group": "root",
            }
            names = [name for name, _ in settings]
            converged, rest = self.converge([], [file], task_vars or {}, sysctl_probe(names))
        except StateError as error:
            return {**result, "failed": True, "msg": str(error)}
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if converged.get("failed"):
            return {**result, **converged}
        running = sysctl_values(rest or "", len(settings))
        if running is None:
            message = f"could not read {', '.join(names)} (sysctl -n)"
            return {**result, "failed": True, "msg": message}
        to_set = [(n, v) for (n, v), now in zip(settings, running, strict=True) if now != v]
        if to_set and not self._task.check_mode:
            command = "sysctl -w " + " ".join(shlex.quote(f"{n}={v}") for n, v in to_set)
            answer = self._low_level_execute_command(command)
            if answer["rc"] != 0:
                return {**result, "failed": True, "msg": f"{command}: {answer['stderr'].strip()}"}
        return {
            **result,
            **converged,
            "changed": converged["changed"] or bool(to_set),
            "set_now": [n for n, _ in to_set],
        }
