"""scripts/build-sample-app: reproducible release archives of tests/fixtures/sampleapp; the sample app's
three dependency declarations (pyproject.toml, uv.lock, requirements.txt) agree."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "build-sample-app"
ROOT_ENTRIES = {"app", "migrations", "alembic.ini", "gunicorn.conf.py", "pyproject.toml", "uv.lock", "requirements.txt",
                "frontend", "VERSION"}
SAMPLEAPP = ROOT / "tests" / "fixtures" / "sampleapp"


def build(output: Path, *args: str) -> tuple[Path, str]:
    """Run the script; the archive path and sha256 it prints."""
    done = subprocess.run([str(SCRIPT), *args, "--output-dir", str(output)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    path, sha = done.stdout.split()
    return Path(path), sha


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {member.name: member for member in tar.getmembers()}


def test_archive_layout_and_checksum(tmp_path: Path) -> None:
    archive, sha = build(tmp_path, "1.2.3")
    assert archive == tmp_path / "sampleapp-1.2.3.tar.gz"
    assert sha == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert (tmp_path / "sampleapp-1.2.3.tar.gz.sha256").read_text() == f"{sha}  sampleapp-1.2.3.tar.gz\n"
    entries = members(archive)
    assert {name.split("/")[0] for name in entries} == ROOT_ENTRIES
    assert {"app/main.py", "app/worker.py", "migrations/env.py", "migrations/versions/0001_create_items.py"} <= set(entries)
    assert not [name for name in entries if "__pycache__" in name or name.endswith(".pyc")]
    assert {(m.uid, m.gid, m.mtime) for m in entries.values()} == {(0, 0, 1704067200)}
    with tarfile.open(archive) as tar:
        version = tar.extractfile("VERSION")
        assert version is not None and version.read() == b"1.2.3\n"


def test_rebuild_gives_the_same_bytes(tmp_path: Path) -> None:
    first = build(tmp_path / "a", "2.0.0")[1]
    (ROOT / "tests/fixtures/sampleapp/app/__init__.py").touch()
    assert build(tmp_path / "b", "2.0.0")[1] == first
    assert build(tmp_path / "c", "2.0.1")[1] != first


def test_unchanged_archive_is_left_alone(tmp_path: Path) -> None:
    archive, sha = build(tmp_path, "2.1.0")
    before = archive.stat().st_mtime_ns
    os.utime(archive, ns=(before - 10**9, before - 10**9))
    assert build(tmp_path, "2.1.0") == (archive, sha)
    assert archive.stat().st_mtime_ns == before - 10**9


@pytest.mark.parametrize(("variant", "marker"), [("ok", None), ("fail-ready", "FAIL_READY"), ("fail-migration", "FAIL_MIGRATION"),
                                                  ("fail-deps", "FAIL_DEPS")])
def test_variants_add_their_marker(tmp_path: Path, variant: str, marker: str | None) -> None:
    names = set(members(build(tmp_path, "3.0.0", "--variant", variant)[0]))
    assert {"FAIL_READY", "FAIL_MIGRATION", "FAIL_DEPS"} & names == ({marker} if marker else set())


def test_fail_deps_pins_a_requirement_that_cannot_install(tmp_path: Path) -> None:
    archive = build(tmp_path, "3.1.0", "--variant", "fail-deps")[0]
    with tarfile.open(archive) as tar:
        requirements = tar.extractfile("requirements.txt").read().decode()  # type: ignore[union-attr]
    assert requirements.rstrip().endswith("prodready-no-such-package==0.0.0")
    assert (SAMPLEAPP / "requirements.txt").read_text() in requirements  # the real pins stay
    # A requirements.txt-only project: the install fails whatever app_install_mode auto picks.
    assert {name.split("/")[0] for name in members(archive)} == ROOT_ENTRIES - {"pyproject.toml", "uv.lock"} | {"FAIL_DEPS"}


def pins(lines: list[str]) -> dict[str, str]:
    """name -> version of `name[extras]==version` lines (comments and blank lines skipped)."""
    found = {}
    for line in lines:
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^]]*\])?==([^\s;]+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(3)
    return found


def test_requirements_pyproject_and_lock_pin_the_same_versions() -> None:
    """requirements.txt (app_install_mode requirements, pip) installs what uv.lock (uv_lock) installs."""
    project = tomllib.loads((SAMPLEAPP / "pyproject.toml").read_text())["project"]
    lock = tomllib.loads((SAMPLEAPP / "uv.lock").read_text())
    dev = {"pytest", "iniconfig", "pluggy", "pygments", "colorama"}  # the dev group, not installed (--no-dev)
    locked = {p["name"]: p["version"] for p in lock["package"] if p["name"] != project["name"] and p["name"] not in dev}
    locked.pop("tzdata", None)  # Windows only (sys_platform == 'win32')
    required = pins((SAMPLEAPP / "requirements.txt").read_text().splitlines())
    assert required == locked
    assert pins(project["dependencies"]).items() <= required.items()
    direct = next(p for p in lock["package"] if p["name"] == project["name"])
    assert {d["name"] for d in direct["dependencies"]} == set(pins(project["dependencies"]))


@pytest.mark.parametrize("args", [[], ["bad/version"], ["1.0", "--variant", "broken"], ["-x", "1.0"]])
def test_bad_arguments_are_refused(tmp_path: Path, args: list[str]) -> None:
    done = subprocess.run([str(SCRIPT), *args, "--output-dir", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert not list(tmp_path.iterdir())


def test_the_django_project_archive(tmp_path: Path) -> None:
    """--project djangoapp: the Django sample as a release (molecule/stack deploys it): no requirements.txt
    and no collected static files (the deploy's collectstatic writes them), reproducible like the other."""
    archive, sha = build(tmp_path, "1.0.0", "--project", "djangoapp")
    assert archive == tmp_path / "djangoapp-1.0.0.tar.gz" and sha == hashlib.sha256(archive.read_bytes()).hexdigest()
    entries = members(archive)
    assert {name.split("/")[0] for name in entries} == {"manage.py", "shop", "items", "static", "pyproject.toml", "uv.lock", "VERSION"}
    assert {"shop/settings.py", "shop/wsgi.py", "items/migrations/0001_initial.py", "static/shop/app.css"} <= set(entries)
    assert not [name for name in entries if "__pycache__" in name or name.startswith("staticfiles")]
    assert build(tmp_path / "again", "1.0.0", "--project", "djangoapp")[1] == sha


@pytest.mark.parametrize(("args", "message"), [
    (("--project", "flask"), "--project 'flask': use sampleapp or djangoapp"),
    (("--project", "djangoapp", "--variant", "fail-ready"), "the djangoapp project has variant ok only"),
])
def test_unknown_projects_and_django_variants_are_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    done = subprocess.run([str(SCRIPT), "1.0.0", *args, "--output-dir", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_each_release_has_its_built_frontend_with_its_own_hashed_asset(tmp_path: Path) -> None:
    """frontend/dist as Vite leaves it: index.html names /assets/app-<hash>.js, which differs per version
    (molecule/app serves it through nginx, the previous release's asset too)."""
    assets = []
    for version in ("1.0.0", "1.1.0"):
        archive = build(tmp_path / version, version)[0]
        with tarfile.open(archive) as tar:
            index = tar.extractfile("frontend/dist/index.html").read().decode()  # type: ignore[union-attr]
            asset = re.search(r'src="/assets/(app-[0-9a-f]{8}\.js)"', index).group(1)  # type: ignore[union-attr]
            assert f"frontend/dist/assets/{asset}" in tar.getnames() and f"sampleapp frontend {version}" in index
        assets.append(asset)
    assert assets[0] != assets[1]
