# Controller side of nodeport_lb.core.nodeport_paths: what each path is, in one shell command
# over the connection (ansible.builtin.stat starts Python on the host once per path).

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import ProbingAction

from nodeport_lb.remote_state import kinds_probe, path_kinds


class ActionModule(ProbingAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "paths": {"type": "list", "elements": "str", "required": True}
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        paths = args["paths"]
        # a host that cannot be asked is an error, never "nothing there"
        kinds = self.read(
            kinds_probe(paths),
            lambda stdout: path_kinds(stdout, paths),
            f"could not look at {', '.join(paths)}",
        )
        return {"changed": False, "kinds": kinds}
