# Ansible's linear strategy, run through Mitogen when it is installed (the [controller] extra
# has it): one Python interpreter per host for the whole run instead of an AnsiballZ upload
# and a fresh interpreter per task, which is most of a task's cost on a run that changes
# nothing. Without Mitogen, or with Mitogen that refuses this Ansible, it is plain linear.

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategy
from ansible.utils.display import Display

DOCUMENTATION = r"""
name: fast_linear
short_description: linear, executed through Mitogen when it is installed
description:
  - Runs each task on all hosts before the next, as C(linear) does.
  - When the Python package C(mitogen) is importable on the controller, tasks run through
    Mitogen's connection multiplexer (one persistent interpreter per host) instead of one
    uploaded module and interpreter per task.
  - Without C(mitogen), or when Mitogen does not support this ansible-core, it behaves exactly
    as C(linear) and says once why it is not faster.
  - Select it with C(strategy = nodeport_lb.core.fast_linear) under C([defaults]) in
    C(ansible.cfg), or C(ANSIBLE_STRATEGY=nodeport_lb.core.fast_linear).
author: nodeport-lb
"""

try:
    # Mitogen checks the Ansible version when its loaders module is imported.
    import ansible_mitogen.loaders
    import ansible_mitogen.strategy
except (ImportError, AnsibleError) as error:
    WITHOUT_MITOGEN: str | None = str(error) or type(error).__name__
    Base: type = LinearStrategy
else:
    WITHOUT_MITOGEN = None
    Base = type(
        "MitogenLinearStrategy", (ansible_mitogen.strategy.StrategyMixin, LinearStrategy), {}
    )


class StrategyModule(Base):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        if WITHOUT_MITOGEN is not None:
            Display().warning(
                "nodeport_lb.core.fast_linear runs as plain linear (every task uploads its "
                f"module): Mitogen is not usable here ({WITHOUT_MITOGEN}); "
                "pip install mitogen makes it faster"
            )
