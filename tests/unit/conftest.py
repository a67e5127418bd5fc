"""Shared helpers for the plugin unit tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def load_plugin(kind: str, name: str) -> ModuleType:
    """Import plugins/<kind>/<name>.py without an installed collection."""
    spec = importlib.util.spec_from_file_location(f"prodready_{kind}_{name}", PLUGINS / kind / f"{name}.py")
    assert spec and spec.loader, f"cannot load plugins/{kind}/{name}.py"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
