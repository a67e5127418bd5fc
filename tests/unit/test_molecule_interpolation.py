"""Every molecule.yml survives molecule's ${VAR} substitution: a lone "$" (even in a comment) stops the
scenario before its first step ("Invalid placeholder"), and an unescaped ${NAME} the scenario means for the
host (${APP_PORT} in a command) would be replaced by an empty string. Literal dollars are written "$$"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from molecule.interpolation import Interpolator, TemplateWithDefaults

PROJECT = Path(__file__).resolve().parents[2]
FILES = sorted(PROJECT.glob("molecule/*/molecule.yml")) + [PROJECT / ".config" / "molecule" / "config.yml"]
# What molecule and scripts/molecule-scenario set; anything else a file names would come out empty.
KNOWN = {"MOLECULE_PROJECT_DIRECTORY", "MOLECULE_EPHEMERAL_DIRECTORY", "MOLECULE_SCENARIO_NAME",
         "MOLECULE_INVENTORY_FILE", "PRODREADY_IMAGE", "PRODREADY_DISTRO"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PROJECT)))
def test_molecule_can_substitute_the_file(path: Path) -> None:
    text = path.read_text()
    Interpolator(TemplateWithDefaults, dict.fromkeys(KNOWN, "x")).interpolate(text)
    unknown = set(re.findall(r"(?<!\$)\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)) - KNOWN
    assert not unknown, f"{path.name} names {sorted(unknown)}: molecule substitutes them (write $$ for a literal $)"
