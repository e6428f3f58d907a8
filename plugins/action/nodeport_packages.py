# Controller side of nodeport_lb.core.nodeport_packages: one dpkg-query over the connection,
# then Ansible's own apt module only for a host that lacks something.

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import ProbingAction

from nodeport_lb.debian_packages import (
    APT_MODULE_PACKAGE,
    DPKG_QUERY_UNKNOWN_PACKAGE,
    PackageNameError,
    missing_packages,
    query_command,
)


class ActionModule(ProbingAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "names": {"type": "list", "elements": "str", "required": True},
        "needed_by": {"type": "str", "default": "these tasks"},
        "install": {"type": "bool", "default": True},
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"changed": False, "missing": [], "pending": False}
        if not args["install"]:
            return result
        names = args["names"]
        try:
            command = query_command(names)
        except PackageNameError as error:
            return {**result, "failed": True, "msg": str(error)}
        query = self._low_level_execute_command(command)
        if query["rc"] > DPKG_QUERY_UNKNOWN_PACKAGE:
            message = f"dpkg-query failed ({query['rc']}): {query['stderr'].strip()}"
            return {**result, "failed": True, "msg": message}
        missing = missing_packages(query["stdout"], names)
        check_mode = bool(self._task.check_mode)
        # check mode installs nothing: the calling role skips what needs these programs
        result.update(missing=missing, pending=check_mode and bool(missing))
        if not missing:
            return result
        if check_mode and missing_packages(query["stdout"], [APT_MODULE_PACKAGE]):
            host = task_vars.get("inventory_hostname", "this host")
            warning = (
                f"check mode: {host} has no {APT_MODULE_PACKAGE}, so apt cannot simulate "
                f"installing {', '.join(missing)} for {args['needed_by']}; the real run "
                f"installs them (and {APT_MODULE_PACKAGE})"
            )
            return {**result, "changed": True, "warnings": [warning]}
        apt = self._execute_module(
            module_name="ansible.legacy.apt",
            module_args={
                "name": names,
                "state": "present",
                "install_recommends": False,
                "update_cache": True,
                "cache_valid_time": 3600,
            },
            task_vars=task_vars,
        )
        return {**apt, "missing": missing, "pending": result["pending"]}
