"""Unit tests for the platform_key filter (the key of every role's supported-platform check)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_plugin

platform = load_plugin("filter", "platform")


@pytest.mark.parametrize(
    "facts, expected",
    [
        ({"distribution": "Debian", "distribution_major_version": "12", "distribution_version": "12.8"}, "Debian-12"),
        ({"distribution": "Debian", "distribution_major_version": "13", "distribution_version": "13.1"}, "Debian-13"),
        ({"distribution": "Ubuntu", "distribution_major_version": "22", "distribution_version": "22.04"}, "Ubuntu-22"),
        ({"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"}, "Ubuntu-24"),
        # Interim releases share the major number with an LTS but ship other package versions.
        ({"distribution": "Ubuntu", "distribution_major_version": "22", "distribution_version": "22.10"}, "Ubuntu-22.10"),
        ({"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.10"}, "Ubuntu-24.10"),
        ({"distribution": "Ubuntu", "distribution_major_version": "23", "distribution_version": "23.04"}, "Ubuntu-23.04"),
        ({"distribution": "Ubuntu", "distribution_major_version": "24"}, "Ubuntu-24"),
        ({"distribution": "CentOS", "distribution_major_version": "9"}, "CentOS-9"),
    ],
)
def test_platform_key(facts: dict[str, str], expected: str) -> None:
    assert platform.platform_key(facts) == expected


SUPPORTED = ["Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24"]


@pytest.mark.parametrize("version", ["22.10", "23.04", "23.10", "24.10", "25.04"])
def test_interim_releases_are_not_supported(version: str) -> None:
    facts = {"distribution": "Ubuntu", "distribution_major_version": version.split(".")[0], "distribution_version": version}
    assert platform.platform_key(facts) not in SUPPORTED


ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


def test_every_role_checks_the_one_platform_list() -> None:
    """#21 item 2: the supported-platform list lives once (plugins/filter/platform.py); before, ten
    roles each wrote their own copy."""
    roles = [vars_file.parts[-3] for vars_file in sorted(ROLES_DIR.glob("*/vars/main.yml"))
             if f"__{vars_file.parts[-3]}_supported_platforms" in vars_file.read_text()]
    assert len(roles) == 10
    for role in roles:
        text = (ROLES_DIR / role / "vars" / "main.yml").read_text()
        assert f"__{role}_supported_platforms: \"{{{{ '{role}' | prodready.webstack.supported_platforms }}}}\"" in text, role
    assert platform.supported_platforms("app") == ["Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24"]
    with pytest.raises(ValueError):
        platform.supported_platforms("")


@pytest.mark.parametrize(("facts", "expected"), [
    ({"virtualization_role": "guest", "virtualization_type": "docker"}, True),
    ({"virtualization_role": "guest", "virtualization_type": "systemd-nspawn"}, True),
    ({"virtualization_role": "guest", "virtualization_type": "kvm"}, False),   # a VM has its own kernel and clock
    ({"virtualization_role": "host", "virtualization_type": "docker"}, False),  # a Docker host
    ({}, False),                                                              # no facts gathered (rollback)
])
def test_in_container(facts: dict[str, str], expected: bool) -> None:
    assert platform.in_container(facts) is expected


def test_no_role_keeps_its_own_container_detection() -> None:
    copies = [str(path) for path in ROLES_DIR.glob("*/vars/main.yml") if "virtualization_type" in path.read_text()]
    assert copies == []
