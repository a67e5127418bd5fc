"""Unit tests for the platform_key filter (the key of every role's supported-platform check)."""

from __future__ import annotations

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
