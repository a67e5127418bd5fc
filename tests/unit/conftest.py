"""Shared helpers for the plugin and role unit tests."""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader
from ansible.template import Templar, trust_as_template

PROJECT = Path(__file__).resolve().parents[2]
PLUGINS = PROJECT / "plugins"
ROLES = PROJECT / "roles"
# Role vars call the collection's own filters (prodready.webstack.*): scripts/setup-venv links the
# checkout as the collection under .collections, which the loader searches as in a play.
init_plugin_loader([str(PROJECT / ".collections")])


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


def role_templar(role: str, *, roles_dir: Path = ROLES, **overrides: Any) -> Templar:
    """A Templar with the role's defaults and vars, as in a play, plus overrides (untemplated).
    roles_dir: another checkout's roles/ (tests/compat renders an older commit's roles)."""
    variables = trusted(yaml.safe_load((roles_dir / role / "defaults" / "main.yml").read_text())
                        | yaml.safe_load((roles_dir / role / "vars" / "main.yml").read_text()))
    loader = DataLoader()
    # Templates include each other by path under templates/, as the template action finds them.
    loader.set_basedir(str(roles_dir / role / "templates"))
    return Templar(loader=loader, variables=variables | overrides)


def render_role_template(role: str, template: str, *, roles_dir: Path = ROLES, **overrides: Any) -> str:
    """roles/<role>/templates/<template> rendered with role_templar(role, **overrides)."""
    text = (roles_dir / role / "templates" / template).read_text()
    return role_templar(role, roles_dir=roles_dir, **overrides).template(trust_as_template(text))


class FakeRoot:
    """A scratch root for a rendered shell helper whose system commands are fakes: bin/<name>
    (first on PATH) are small scripts, and fake/ (as $FAKE) holds what they answer or record."""

    def __init__(self, root: Path, fakes: dict[str, str], helper: str, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.helper = root / helper
        self._env = env or {}
        for directory in ("bin", "fake"):
            (root / directory).mkdir(parents=True, exist_ok=True)
        for name, body in fakes.items():
            self._executable(root / "bin" / name, body)

    @staticmethod
    def _executable(path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o755)

    def install(self, text: str) -> None:
        """Write the rendered helper."""
        self._executable(self.helper, text)

    def fake(self, name: str, content: str) -> None:
        (self.root / "fake" / name).write_text(content)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The helper with args, the fakes first on PATH."""
        env = {**os.environ, "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}", "FAKE": str(self.root / "fake"), **self._env}
        return subprocess.run([str(self.helper), *args], env=env, capture_output=True, text=True, check=False)
