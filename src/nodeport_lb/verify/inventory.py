"""An Ansible inventory as the verification reads it: groups, host variables, addresses.

Read through ``ansible-inventory --list`` so every inventory Ansible understands (YAML, INI,
plugins, group_vars) works, with the same variable precedence as the playbook.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodeport_lb.loadbalancer import hosts_from_inventory


class InventoryError(RuntimeError):
    """The inventory cannot be read (message says why)."""


def _ansible_inventory() -> str:
    # The controller's ansible-core sits beside this Python in a virtualenv.
    beside = Path(sys.executable).with_name("ansible-inventory")
    return str(beside) if beside.exists() else shutil.which("ansible-inventory") or beside.name


@dataclass(frozen=True)
class Inventory:
    sources: tuple[str, ...]  # as given to -i (empty: ansible.cfg's default)
    groups: Mapping[str, Mapping[str, Any]]
    hostvars: Mapping[str, Mapping[str, Any]]

    @staticmethod
    def list_command(sources: Sequence[str] = ()) -> list[str]:
        command = [_ansible_inventory(), "--list"]
        for source in sources:
            command += ["-i", source]
        return command

    @staticmethod
    def list_environment() -> dict[str, str]:
        """ansible-inventory's environment: a source it cannot parse (a mistyped -i, a broken
        YAML file) fails it, where by default it would warn and list an empty inventory whose
        every check is then skipped."""
        return {**os.environ, "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True"}

    @classmethod
    def load(cls, sources: Sequence[str] = ()) -> Inventory:
        result = subprocess.run(
            cls.list_command(sources),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=cls.list_environment(),
        )
        if result.returncode != 0:
            raise InventoryError(f"ansible-inventory failed: {result.stderr.strip()}")
        return cls.parse(sources, result.stdout)

    @classmethod
    def parse(cls, sources: Sequence[str], listing: str) -> Inventory:
        """From what ``list_command(sources)`` printed."""
        try:
            data = json.loads(listing)
        except ValueError:
            raise InventoryError("ansible-inventory printed no inventory") from None
        meta = data.pop("_meta", {})
        return cls(tuple(sources), data, meta.get("hostvars", {}))

    def hosts(self, group: str) -> list[str]:
        """Hosts of a group and of its children, in inventory order, each once."""
        found: dict[str, None] = {}
        entry = self.groups.get(group) or {}
        for host in entry.get("hosts") or []:
            found[host] = None
        for child in entry.get("children") or []:
            found.update(dict.fromkeys(self.hosts(child)))
        return list(found)

    def listed(self) -> dict[str, Any]:
        """The inventory as ``ansible-inventory --list`` printed it."""
        return {**self.groups, "_meta": {"hostvars": self.hostvars}}

    def vars_of(self, host: str) -> Mapping[str, Any]:
        return self.hostvars.get(host) or {}

    def var(self, name: str, default: Any = None) -> Any:
        """A variable every host shares (group_vars/all): from localhost, else any host."""
        for host in ["localhost", *self.hostvars]:
            if name in self.vars_of(host):
                return self.vars_of(host)[name]
        return default

    def node_name(self, host: str) -> str:
        """A node host's name in the control plane (the agent's --node-name)."""
        return str(self.vars_of(host).get("nodeport_lb_node_proxy_node_name") or host)

    def addresses(self, group: str) -> dict[str, str]:
        """name -> address the load balancers use, as the roles compute it."""
        hosts = hosts_from_inventory(
            {"inventory_hostname": name, **self.vars_of(name)} for name in self.hosts(group)
        )
        return {h["name"]: h["address"] for h in hosts}

    def node_list(self) -> list[dict[str, Any]]:
        return hosts_from_inventory(
            {"inventory_hostname": name, **self.vars_of(name)} for name in self.hosts("nodes")
        )
