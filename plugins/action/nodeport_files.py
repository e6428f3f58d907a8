# Controller side of nodeport_lb.core.nodeport_files: one shell command asks the host whether
# every file and directory is as wanted; Ansible's own copy action (validate, check mode, diff,
# atomic replace) and file module write only what is not. A role's files then cost a run that
# changes nothing one command on the host instead of one module start per directory and two
# per file (a template's or copy's stat, then its file module for the attributes).

from __future__ import annotations

import hashlib
from typing import Any

from ansible.plugins.action import ActionBase

from nodeport_lb.remote_state import StateError, WantedPath, paths_as_wanted, paths_probe

_OWNERSHIP = {
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
}
ARGUMENT_SPEC = {
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
            **_OWNERSHIP,
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
            **_OWNERSHIP,
        },
    },
}


class WantedStateAction(ActionBase):
    """What the probing actions share: a probe over the connection, and Ansible's own copy
    action or file module for a path the probe did not find as wanted."""

    TRANSFERS_FILES = True
    _requires_connection = True

    def probe(self, command: str) -> str | None:
        """The probe's output, or None when it failed: then nothing counts as wanted."""
        answer = self._low_level_execute_command(command)
        return answer["stdout"] if answer["rc"] == 0 else None

    def wanted_file(self, spec: dict[str, Any]) -> WantedPath:
        if spec.get("src") is not None:
            source = self._loader.get_real_file(self._find_needle("files", spec["src"]))
            with open(source, "rb") as f:
                digest = hashlib.file_digest(f, "sha1").hexdigest()
        else:
            digest = hashlib.sha1(spec["content"].encode()).hexdigest()
        return WantedPath.file(spec["dest"], digest, spec["mode"], spec["owner"], spec["group"])

    def wanted_directory(self, spec: dict[str, Any]) -> WantedPath:
        return WantedPath.directory(spec["path"], spec["mode"], spec["owner"], spec["group"])

    def copy(self, spec: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        """One file through ansible.legacy.copy, as a copy task of its own would write it."""
        task = self._task.copy()
        task.args = {
            key: spec[key]
            for key in ("dest", "content", "src", "mode", "owner", "group", "validate")
            if spec.get(key) is not None
        }
        copy_action = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.copy",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
        )
        result: dict[str, Any] = copy_action.run(task_vars=task_vars)
        if spec.get("secret"):
            # the file holds a secret: nothing of its content in the output
            result.pop("diff", None)
            result.pop("invocation", None)
        return result

    def directory(self, spec: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        args = {key: spec[key] for key in ("path", "mode", "owner", "group")}
        return self._execute_module(
            module_name="ansible.legacy.file",
            module_args={**args, "state": "directory"},
            task_vars=task_vars,
        )

    def converge(
        self,
        directories: list[dict[str, Any]],
        files: list[dict[str, Any]],
        task_vars: dict[str, Any],
        extra_probe: str = "",
    ) -> tuple[dict[str, Any], str | None]:
        """Directories first, then files, in the order given (a file's validation may need
        the ones before it in place); stops at the first failure. The result, and what the
        probe printed after the paths' lines (extra_probe's output) or None."""
        wanted = [self.wanted_directory(d) for d in directories]
        wanted += [self.wanted_file(f) for f in files]
        command = "; ".join(part for part in (paths_probe(wanted), extra_probe) if part)
        output = self.probe(command) if command else ""
        lines = output.splitlines() if output is not None else []
        as_wanted = paths_as_wanted("\n".join(lines[: len(wanted)]), wanted)
        rest = "\n".join(lines[len(wanted) :]) if output is not None else None
        result: dict[str, Any] = {"changed": False, "changed_paths": [], "diff": []}
        steps = [(self.directory, d, d["path"]) for d in directories] + [
            (self.copy, f, f["dest"]) for f in files
        ]
        for (write, spec, path), settled in zip(steps, as_wanted, strict=True):
            if settled:
                continue
            step = write(spec, task_vars)
            if step.get("failed"):
                return {**result, "failed": True, "msg": f"{path}: {step.get('msg', step)}"}, rest
            if step.get("changed"):
                result["changed"] = True
                result["changed_paths"].append(path)
            diff = step.get("diff")
            result["diff"] += diff if isinstance(diff, list) else [diff] if diff else []
        return result, rest


class ActionModule(WantedStateAction):
    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            converged, _ = self.converge(args["directories"], args["files"], task_vars or {})
        except StateError as error:
            return {**result, "failed": True, "msg": str(error)}
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return {**result, **converged}
