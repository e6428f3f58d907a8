# Controller side of nodeport_lb.core.nodeport_facts: the facts site.yml reads of a host
# (addresses, CPU, Python version) from one shell command, where ansible.builtin.setup starts
# Python on the host and runs its collectors.

from __future__ import annotations

from typing import Any, ClassVar

from ansible_collections.nodeport_lb.core.plugins.plugin_utils.probing import ProbingAction

from nodeport_lb.remote_state import facts_probe, host_facts


class ActionModule(ProbingAction):
    ARGUMENT_SPEC: ClassVar[dict[str, Any]] = {
        "python": {"type": "str", "default": "python3"},
    }

    def act(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        # no facts is an error, never a host without interfaces
        facts = self.read(
            facts_probe(args["python"]), host_facts, "could not read the host's facts"
        )
        return {"changed": False, "ansible_facts": facts}
