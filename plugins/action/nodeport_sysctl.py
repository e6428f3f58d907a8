# Controller side of nodeport_lb.core.nodeport_sysctl (ansible-core has no sysctl module; the
# one in ansible.posix is not installed with it): one shell command reads the sysctl.d file's
# state and the running values; the file goes through Ansible's copy action and a value
# through `sysctl -w` only when they differ.

from __future__ import annotations

import shlex
from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import FilesAction

from nodeport_lb.remote_state import (
    sysctl_file_content,
    sysctl_probe,
    sysctl_setting,
    sysctl_values,
)


class ActionModule(FilesAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "settings": {"type": "dict", "required": True},
        "sysctl_file": {"type": "str", "required": True},
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        settings = [sysctl_setting(name, str(v)) for name, v in args["settings"].items()]
        names = [name for name, _ in settings]
        file = {
            "dest": args["sysctl_file"],
            "content": sysctl_file_content(settings),
            "mode": "0644",
            "owner": "root",
            "group": "root",
        }
        converged, rest = self.converge([], [file], task_vars, sysctl_probe(names))
        if converged.get("failed"):
            return converged
        running = sysctl_values(rest or "", len(settings))
        if running is None:
            return {"failed": True, "msg": f"could not read {', '.join(names)} (sysctl -n)"}
        to_set = [(n, v) for (n, v), now in zip(settings, running, strict=True) if now != v]
        if to_set and not self._task.check_mode:
            command = "sysctl -w " + " ".join(shlex.quote(f"{n}={v}") for n, v in to_set)
            answer = self._low_level_execute_command(command)
            if answer["rc"] != 0:
                return {"failed": True, "msg": f"{command}: {answer['stderr'].strip()}"}
        return {
            **converged,
            "changed": converged["changed"] or bool(to_set),
            "set_now": [n for n, _ in to_set],
        }
