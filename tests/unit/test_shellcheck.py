"""shellcheck on every shell script of the project: scripts/, the benchmarks and fault drills, and the
host helpers the roles render from templates (rendered with the role's defaults first). Without
shellcheck on PATH the test skips; PRODREADY_REQUIRE_SHELLCHECK=1 (CI) turns the skip into a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import render_role_template

PROJECT = Path(__file__).resolve().parents[2]
SHEBANGS = ("#!/usr/bin/env bash", "#!/bin/bash", "#!/bin/sh", "#!/usr/bin/env sh")
SITE = {"name": "app", "server_names": ["app.example.com"], "upstream_file": "/etc/nginx/app-upstream.conf"}
# Each rendered helper, with the variables its role's defaults leave to the inventory.
HOST_SCRIPTS: dict[str, tuple[str, dict[str, Any]]] = {
    "app-switch": ("app", {"inventory_hostname": "web1", "nginx_sites": [SITE], "groups": {"web": ["web1"]}}),
    "app-run": ("app", {"inventory_hostname": "web1", "nginx_sites": [SITE], "groups": {"web": ["web1"]}}),
    "prodready-backup": ("backup", {"backup_databases": ["app"], "backup_files_paths": ["/srv/app/media"],
                                    "backup_restic_enabled": True}),
    "prodready-backup-restore-test": ("backup", {"backup_databases": ["app"],
                                                 "backup_restore_test_tables": [{"database": "app", "table": "items"}]}),
    "prodready-converged": ("converged", {}),
    "install.sh": ("app", {"app_python": "/usr/bin/python3.12", "app_pip_extra_args": ["--require-hashes"],
                           "app_uv_sync_extra_args": ["--extra", "postgres"]}),
}
# Templates not rendered to /usr/local/sbin (the release install script runs as one task's script).
TEMPLATE_PATHS = {"install.sh": "srv/app/releases/install.sh.j2"}


def shellcheck() -> str:
    path = shutil.which("shellcheck")
    if path is None:
        if os.environ.get("PRODREADY_REQUIRE_SHELLCHECK") == "1":
            pytest.fail("shellcheck is not on PATH (apt-get install shellcheck)")
        pytest.skip("shellcheck is not on PATH")
    return path


def shell_scripts() -> list[Path]:
    """Files under scripts/ and tests/ whose first line is a shell shebang."""
    found = []
    for path in sorted([*(PROJECT / "scripts").iterdir(), *(PROJECT / "tests").rglob("*")]):
        if path.is_file() and ".cache" not in path.parts:
            with path.open("rb") as handle:
                first = handle.readline().decode(errors="replace").strip()
            if first.startswith(SHEBANGS):
                found.append(path)
    return found


def test_the_project_scripts_are_shellcheck_clean() -> None:
    scripts = shell_scripts()
    assert PROJECT / "scripts" / "test" in scripts and PROJECT / "tests" / "bench" / "run" in scripts
    out = subprocess.run([shellcheck(), "-x", "-P", "SCRIPTDIR", "-f", "gcc", *map(str, scripts)],
                         capture_output=True, text=True, check=False, cwd=PROJECT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_host_script_template_is_checked() -> None:
    templates = {path.name.removesuffix(".j2") for path in (PROJECT / "roles").glob("*/templates/**/*.j2")
                 if path.read_text().startswith(SHEBANGS)}
    assert templates == set(HOST_SCRIPTS)


@pytest.mark.parametrize("script", sorted(HOST_SCRIPTS))
def test_rendered_host_scripts_are_shellcheck_clean(script: str, tmp_path: Path) -> None:
    role, overrides = HOST_SCRIPTS[script]
    rendered = tmp_path / script
    template = TEMPLATE_PATHS.get(script, f"usr/local/sbin/{script}.j2")
    rendered.write_text(render_role_template(role, template, ansible_managed="managed", **overrides))
    out = subprocess.run([shellcheck(), "-f", "gcc", str(rendered)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
