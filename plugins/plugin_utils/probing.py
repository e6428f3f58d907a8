# What the probing actions (nodeport_packages, _files, _unit, _sysctl, _paths, _facts) share on
# the controller: each asks the host in one shell command whether anything is to do, and
# starts Ansible's own modules only for what is. A run that changes nothing then starts no
# Python on the host for these tasks.

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from ansible.plugins.action import ActionBase

from nodeport_lb.remote_state import StateError, WantedPath, paths_as_wanted, paths_probe

T = TypeVar("T")

OWNERSHIP_SPEC = {
    "owner": {"type": "str", "default": "root"},
    "group": {"type": "str", "default": "root"},
}


class ProbeError(RuntimeError):
    """The host's answer to a probe cannot be read: the task fails with it."""


class ProbingAction(ActionBase):
    """Validates the task's arguments against ARGUMENT_SPEC and calls act(); a StateError (a
    value that must not reach a shell or a file) fails the task before anything runs, a
    ProbeError (an answer that cannot be read) fails it with what the host said."""

    TRANSFERS_FILES = False
    _requires_connection = True
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {}

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        _, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        try:
            return {**result, **self.act(args, task_vars or {})}
        except (StateError, ProbeError) as error:
            return {**result, "failed": True, "msg": str(error)}
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def probe(self, command: str) -> str | None:
        """The probe's output, or None when it failed: then nothing counts as in place."""
        answer = self._low_level_execute_command(command)
        return answer["stdout"] if answer["rc"] == 0 else None

    def read(self, command: str, parse: Callable[[str], T | None], failure: str) -> T:
        """The host's answer as parse reads it. A failed command, or an answer parse cannot
        read (None), is a ProbeError ("FAILURE: what the host said"), never an empty answer."""
        answer = self._low_level_execute_command(command)
        parsed = parse(answer["stdout"]) if answer["rc"] == 0 else None
        if parsed is None:
            said = (answer["stderr"] or answer["stdout"]).strip()
            raise ProbeError(f"{failure}: {said}")
        return parsed


class FilesAction(ProbingAction):
    """Files and directories: stat and sha1sum in the probe; Ansible's own copy action
    (validate, check mode, diff, atomic replace) and file module for what is not in place."""

    TRANSFERS_FILES = True

    def wanted_file(self, spec: dict[str, Any]) -> WantedPath:
        if spec.get("src") is not None:
            source = self._loader.get_real_file(self._find_needle("files", spec["src"]))
            with open(source, "rb") as f:
                digest = hashlib.file_digest(f, "sha1").hexdigest()
        else:
            digest = hashlib.sha1(spec["content"].encode()).hexdigest()
        return WantedPath.file(spec["dest"], digest, spec["mode"], spec["owner"], spec["group"])

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
        probe printed after the paths' lines (extra_probe's output), None if it failed."""
        wanted = [
            WantedPath.directory(d["path"], d["mode"], d["owner"], d["group"]) for d in directories
        ]
        wanted += [self.wanted_file(f) for f in files]
        command = "; ".join(part for part in (paths_probe(wanted), extra_probe) if part)
        output = self.probe(command) if command else ""
        lines = output.splitlines() if output is not None else []
        in_place = paths_as_wanted("\n".join(lines[: len(wanted)]), wanted)
        rest = "\n".join(lines[len(wanted) :]) if output is not None else None
        result: dict[str, Any] = {"changed": False, "changed_paths": [], "diff": []}
        steps = [(self.directory, d, d["path"]) for d in directories]
        steps += [(self.copy, f, f["dest"]) for f in files]
        for (write, spec, path), settled in zip(steps, in_place, strict=True):
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
