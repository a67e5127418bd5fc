"""Platform filters: the key a role's support list and version tables are indexed by, the one list of
supported platforms every role checks, and container detection (#21 item 2: each once, here)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DOCUMENTATION = r"""
name: platform_key
short_description: The platform key of a host (Debian-12, Ubuntu-24), with Ubuntu interim releases kept apart
description:
  - Returns C(<distribution>-<major version>) from a host's facts, the key every role's
    supported-platform list and per-platform version tables use.
  - Ubuntu LTS releases are C(YY.04) of an even year; any other Ubuntu release (an interim one
    such as 22.10 or 24.10, supported for nine months and shipping other package versions) gets
    its full version (C(Ubuntu-24.10)), so it is not taken for the LTS of the same year.
positional: _input
options:
  _input:
    description: The host's ansible_facts (distribution, distribution_major_version, distribution_version).
    type: dict
    required: true
"""

# The platforms the collection supports, for every role: how each is tested is in the README
# ("Supported platforms"). A role that supports fewer would say so here, by name.
SUPPORTED_PLATFORMS: tuple[str, ...] = ("Debian-12", "Debian-13", "Ubuntu-22", "Ubuntu-24")
# virtualization_type values of a container guest (systemd's detect-virt names and Ansible's).
CONTAINER_TYPES = frozenset({"docker", "container", "containerd", "lxc", "podman", "systemd-nspawn"})

_UBUNTU_LTS = re.compile(r"^(?P<year>[0-9]{2})\.04(\.[0-9]+)?$")


def platform_key(facts: Mapping[str, Any]) -> str:
    """Debian-12, Ubuntu-22 (22.04 only), Ubuntu-22.10 (interim: not an LTS key)."""
    distribution = str(facts.get("distribution", "unknown"))
    major = str(facts.get("distribution_major_version", "unknown"))
    if distribution == "Ubuntu":
        version = str(facts.get("distribution_version", ""))
        match = _UBUNTU_LTS.match(version)
        if not match or int(match["year"]) % 2:
            return f"Ubuntu-{version or major}"
    return f"{distribution}-{major}"


def supported_platforms(role: str) -> list[str]:
    """The platform keys role supports (the same list for every role of the collection)."""
    if not str(role).strip():
        raise ValueError("supported_platforms needs the role's name")
    return list(SUPPORTED_PLATFORMS)


def in_container(facts: Mapping[str, Any]) -> bool:
    """A container guest (Docker, LXC, systemd-nspawn...): no clock, kernel or swap of its own to manage.
    Facts without virtualization data (a rollback that gathers none) count as no container."""
    return (str(facts.get("virtualization_role", "")) == "guest"
            and str(facts.get("virtualization_type", "")) in CONTAINER_TYPES)


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"platform_key": platform_key, "supported_platforms": supported_platforms, "in_container": in_container}
