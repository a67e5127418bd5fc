"""How prodready.webstack.python resolves python_strategy auto and reads python-build-standalone archive names.

The role's defaults and vars are rendered with Ansible's own templating, as in a play, for platforms the
Molecule scenario cannot run (Ubuntu) and for real python-build-standalone release names.
"""

from __future__ import annotations

from typing import Any

import pytest
from ansible.template import trust_as_template

from conftest import role_templar


def render(expression: str, platform: str = "Debian-12", **overrides: Any) -> Any:
    distribution, major = platform.split("-")
    facts = {"ansible_facts": {"distribution": distribution, "distribution_major_version": major}}
    return role_templar("python", **facts, **overrides).template(trust_as_template("{{ " + expression + " }}"))


@pytest.mark.parametrize("platform, version, strategy", [
    ("Debian-12", "3.12", "standalone"),
    ("Debian-12", "3.11", "system"),
    ("Debian-13", "3.13", "system"),
    ("Debian-13", "3.12", "standalone"),
    ("Ubuntu-22", "3.12", "deadsnakes"),
    ("Ubuntu-22", "3.10", "system"),
    ("Ubuntu-24", "3.12", "system"),
    ("Ubuntu-24", "3.13", "deadsnakes"),
    ("Ubuntu-24", "3.14", "standalone"),
])
def test_auto_strategy(platform: str, version: str, strategy: str) -> None:
    assert render("__python_strategy", platform, python_version=version) == strategy


def test_an_explicit_strategy_is_kept() -> None:
    assert render("__python_strategy", "Ubuntu-24", python_strategy="standalone") == "standalone"


@pytest.mark.parametrize("url, version, arch", [
    ("https://github.com/astral-sh/python-build-standalone/releases/download/20240107/"
     "cpython-3.12.1%2B20240107-x86_64-unknown-linux-gnu-install_only.tar.gz", "3.12.1", "x86_64"),
    ("https://mirror.example/python/cpython-3.12.8+20241219-x86_64_v3-unknown-linux-gnu-install_only_stripped.tar.gz?sig=1",
     "3.12.8", "x86_64_v3"),
    ("file:///srv/cpython-3.13.1+20241219-aarch64-unknown-linux-gnu-install_only.tar.gz", "3.13.1", "aarch64"),
    ("http://172.17.0.1:8765/cpython-3.12.1-x86_64-unknown-linux-gnu-install_only.tar.gz", "3.12.1", "x86_64"),
    ("https://artifacts.example/python-latest.tar.gz", "", ""),
])
def test_version_and_architecture_from_the_archive_name(url: str, version: str, arch: str) -> None:
    assert render("__python_standalone_version", python_standalone_url=url) == version
    assert render("__python_standalone_arch", python_standalone_url=url) == arch


def test_prefix_and_interpreter_follow_the_archive_version() -> None:
    url = "https://mirror.example/cpython-3.12.8+20241219-x86_64-unknown-linux-gnu-install_only.tar.gz"
    assert render("python_standalone_prefix", python_standalone_url=url) == "/opt/python/3.12.8"
    assert render("__python_interpreter", python_standalone_url=url) == "/opt/python/3.12.8/bin/python3.12"
    assert render("__python_standalone_version", python_standalone_url=url, python_standalone_version="3.12.9") == "3.12.9"
    assert render("__python_interpreter", "Ubuntu-24") == "/usr/bin/python3.12"


def test_packages_of_the_apt_strategies() -> None:
    assert render("__python_packages", python_version="3.13") == ["python3.13", "python3.13-venv"]
    assert render("__python_packages", python_dev_enabled=True) == ["python3.12", "python3.12-venv", "python3.12-dev"]
