"""scripts/build-python-archive, the stand-in for a python-build-standalone download: two builds
started together (two scenarios of scripts/test) give one archive whose digest file matches it.
Before the lock the second build's `mv` of the shared .partial failed and its scenario with it."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SOURCE = Path(os.environ.get("PYTHON_ARCHIVE_SOURCE", "/root/.pyenv/versions/3.12.1"))


@pytest.mark.skipif(not SOURCE.is_dir() or shutil.which("patchelf") is None, reason="needs the pyenv CPython and patchelf")
def test_two_builds_started_together_give_one_verified_archive(tmp_path: Path) -> None:
    env = {**os.environ, "ARTIFACTS_DIR": str(tmp_path), "PYTHON_ARCHIVE_SOURCE": str(SOURCE)}
    builds = [subprocess.Popen([str(PROJECT / "scripts" / "build-python-archive")], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [build.communicate(timeout=600) for build in builds]
    assert [build.returncode for build in builds] == [0, 0], outputs
    archive, digest = outputs[0][0].split()
    assert outputs[1][0].split() == [archive, digest]
    assert hashlib.sha256(Path(archive).read_bytes()).hexdigest() == digest
    assert Path(archive + ".sha256").read_text().split() == [digest, Path(archive).name]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [Path(archive).name, Path(archive).name + ".sha256"]


@pytest.mark.skipif(not SOURCE.is_dir() or shutil.which("patchelf") is None, reason="needs the pyenv CPython and patchelf")
def test_a_cached_archive_that_does_not_match_its_digest_is_rebuilt(tmp_path: Path) -> None:
    """What the old race left on disk (one build's archive, the other's digest) was served as it was: every
    scenario's download then failed its sha256 check until the cache was removed by hand."""
    env = {**os.environ, "ARTIFACTS_DIR": str(tmp_path), "PYTHON_ARCHIVE_SOURCE": str(SOURCE)}
    script = [str(PROJECT / "scripts" / "build-python-archive")]
    archive, digest = subprocess.run(script, env=env, text=True, capture_output=True, check=True).stdout.split()
    Path(archive).write_bytes(b"a different build")
    rebuilt = subprocess.run(script, env=env, text=True, capture_output=True, check=True)
    assert "building cpython-" in rebuilt.stderr, rebuilt.stderr  # not served from the cache
    again = rebuilt.stdout.split()
    assert again[0] == archive and hashlib.sha256(Path(archive).read_bytes()).hexdigest() == again[1]
    assert Path(archive + ".sha256").read_text().split()[0] == again[1]
