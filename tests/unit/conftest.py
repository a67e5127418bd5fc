"""Shared helpers for the plugin and role unit tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
ROLES = Path(__file__).resolve().parents[2] / "roles"


def load_plugin(kind: str, name: str) -> ModuleType:
    """Import plugins/<kind>/<name>.py without an installed collection."""
    spec = importlib.util.spec_from_file_location(f"prodready_{kind}_{name}", PLUGINS / kind / f"{name}.py")
    assert spec and spec.loader, f"cannot load plugins/{kind}/{name}.py"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trusted(value: Any) -> Any:
    """Role files are trusted templates in a play; yaml.safe_load gives plain strings."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [trusted(v) for v in value]
    return value


def role_templar(role: str, **overrides: Any) -> Templar:
    """A Templar with the role's defaults and vars, as in a play, plus overrides (untemplated)."""
    variables = trusted(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
                        | yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text()))
    return Templar(loader=DataLoader(), variables=variables | overrides)


def render_role_template(role: str, template: str, **overrides: Any) -> str:
    """roles/<role>/templates/<template> rendered with role_templar(role, **overrides)."""
    text = (ROLES / role / "templates" / template).read_text()
    return role_templar(role, **overrides).template(trust_as_template(text))
