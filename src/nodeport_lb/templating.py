"""Access to templates/, the one copy of every file nodeport-lb generates.

The same files are used by the Python code (through this module) and by the Ansible roles
(``{{ playbook_dir }}/templates/...``); they ship in the package as ``nodeport_lb/templates``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jinja2


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=False,  # same settings as Ansible's template module
        autoescape=False,
    )
    # JSON is valid YAML: values rendered with to_json can never break the document.
    env.filters["to_json"] = lambda value: json.dumps(value, sort_keys=False)
    return env


def _load(name: str) -> str:
    return template_path(name).read_text(encoding="utf-8")


def template_path(name: str) -> Any:
    """A Traversable for templates/<name> (a real file both in the source tree and installed)."""
    return resources.files("nodeport_lb") / "templates" / name


def render_template(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
