"""The Molecule tests' platform helper (molecule/conftest.py): os-release text to the roles' platform key,
so expectations on a host named <scenario>-ubuntu2404 come from the host, not from its name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import PROJECT


def _molecule_conftest() -> ModuleType:
    path: Path = PROJECT / "molecule" / "conftest.py"
    spec = importlib.util.spec_from_file_location("prodready_molecule_conftest", path)
    assert spec and spec.loader, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


helpers = _molecule_conftest()

UBUNTU_2204 = """PRETTY_NAME="Ubuntu 22.04.5 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.5 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""
UBUNTU_2404 = """PRETTY_NAME="Ubuntu 24.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
VERSION="24.04.3 LTS (Noble Numbat)"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=noble
LOGO=ubuntu-logo
"""
UBUNTU_2410 = 'NAME="Ubuntu"\nVERSION_ID="24.10"\nVERSION_CODENAME=oracular\nID=ubuntu\n'
DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
DEBIAN_13 = """PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
VERSION="13 (trixie)"
VERSION_CODENAME=trixie
DEBIAN_VERSION_FULL=13.8
ID=debian
"""


@pytest.mark.parametrize("text, expected", [
    (UBUNTU_2204, "Ubuntu-22"),
    (UBUNTU_2404, "Ubuntu-24"),
    (DEBIAN_12, "Debian-12"),
    (DEBIAN_13, "Debian-13"),
    (UBUNTU_2410, "Ubuntu-24.10"),  # interim: not taken for the LTS (filter platform_key)
])
def test_platform_from_os_release(text: str, expected: str) -> None:
    assert helpers.platform_from_os_release(helpers.parse_os_release(text)) == expected


def test_os_release_fields_are_unquoted() -> None:
    fields = helpers.parse_os_release(UBUNTU_2204 + "# a comment\n\nEMPTY=\nSINGLE='x y'\n")
    assert fields["VERSION_CODENAME"] == "jammy" and fields["PRETTY_NAME"] == "Ubuntu 22.04.5 LTS"
    assert fields["EMPTY"] == "" and fields["SINGLE"] == "x y"


class _Backend:
    hostname = "redis-ubuntu2204"


class _File:
    content_string = UBUNTU_2204


class _Host:
    """What platform() uses of testinfra's host: the backend's name and one file."""
    backend = _Backend()

    def file(self, path: str) -> _File:
        assert path == "/etc/os-release"
        return _File()


def test_platform_of_a_host_comes_from_its_os_release() -> None:
    assert helpers.platform(_Host()) == "Ubuntu-22"
    assert helpers.os_release(_Host())["VERSION_CODENAME"] == "jammy"


@pytest.mark.parametrize("package, upstream", [
    ("5:7.0.15-1~deb12u1", "7.0.15"), ("5:6.0.16-1ubuntu1.1", "6.0.16"), ("3.12.3-1ubuntu0.8", "3.12.3"),
    ("15.14-0+deb12u1", "15.14"), ("3.13.5", "3.13.5"),
])
def test_upstream_version(package: str, upstream: str) -> None:
    assert helpers.upstream_version(package) == upstream
