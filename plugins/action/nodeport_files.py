# Controller side of nodeport_lb.core.nodeport_files: one shell command asks the host whether
# every file and directory is in place; Ansible's own copy and file write only what is not. A
# role's files then cost a run that changes nothing one command on the host, instead of one
# module start per directory and two per file (a template's or copy's stat, then its file
# module for the attributes).

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import (
    OWNERSHIP_SPEC,
    FilesAction,
)


class ActionModule(FilesAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "files": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "dest": {"type": "str", "required": True},
                "content": {"type": "str"},
                "src": {"type": "str"},
                "mode": {"type": "str", "required": True},
                "validate": {"type": "str"},
                "secret": {"type": "bool", "default": False},
                **OWNERSHIP_SPEC,
            },
            "mutually_exclusive": [["content", "src"]],
            "required_one_of": [["content", "src"]],
        },
        "directories": {
            "type": "list",
            "elements": "dict",
            "default": [],
            "options": {
                "path": {"type": "str", "required": True},
                "mode": {"type": "str", "default": "0755"},
                **OWNERSHIP_SPEC,
            },
        },
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        converged, _ = self.converge(args["directories"], args["files"], task_vars)
        return converged
