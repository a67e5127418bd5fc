"""Which apt sources unattended-upgrades leaves unpatched (third-party repositories)."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

DOCUMENTATION = r"""
name: unpatched_apt_sources
short_description: The third-party apt sources no unattended-upgrades Origins-Pattern matches
description:
  - Reads C(apt-cache policy) (the release line of every package file) and C(apt-config dump) of
    C(Unattended-Upgrade::Origins-Pattern) and the legacy C(Unattended-Upgrade::Allowed-Origins)
    (the live lists, every apt.conf.d snippet merged) and returns
    the sources that are neither the distribution's own archive nor matched by a pattern, as
    C(o=<origin>,n=<codename>) strings: packages from them (PGDG, deadsnakes, a vendor's repository)
    are never updated automatically.
  - Patterns are matched as unattended-upgrades does: comma-separated C(key=value) pairs, every pair
    must match (fnmatch wildcards), keys origin/o, label/l, archive/suite/a, codename/n, component/c,
    site; C(${distro_id}) and C(${distro_codename}) are substituted.
positional: _input
options:
  _input:
    description: The output of C(apt-cache policy).
    type: str
    required: true
  config:
    description: The output of C(apt-config dump) for Unattended-Upgrade::Origins-Pattern and ::Allowed-Origins.
    type: str
    required: true
  distro_id:
    description: The distribution (Debian, Ubuntu).
    type: str
    required: true
  codename:
    description: The release codename (bookworm, noble).
    type: str
    required: true
"""

# Origins of the distributions' own archives: their non-security pockets are left out on purpose.
DISTRIBUTION_ORIGINS = frozenset({"Debian", "Debian Backports", "Ubuntu", "UbuntuESM", "UbuntuESMApps"})
_KEYS = {"origin": "o", "o": "o", "label": "l", "l": "l", "archive": "a", "suite": "a", "a": "a",
         "codename": "n", "n": "n", "component": "c", "c": "c", "site": "site"}
_PATTERN_LINE = re.compile(r'^Unattended-Upgrade::Origins-Pattern::\s+"(?P<pattern>.*)";\s*$')
# The legacy list ("<origin>:<archive>"), which Ubuntu's 50unattended-upgrades still uses; unattended-upgrades
# allows the union of both lists.
_LEGACY_LINE = re.compile(r'^Unattended-Upgrade::Allowed-Origins::\s+"(?P<origin>.*):(?P<archive>[^:]*)";\s*$')


def _fields(text: str) -> dict[str, str]:
    """'o=Debian,n=bookworm,l=Debian-Security' -> {'o': 'Debian', ...} (a label may hold a comma)."""
    fields: dict[str, str] = {}
    key = ""
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if sep and re.fullmatch(r"[a-z]+", name.strip()):
            key = name.strip()
            fields[key] = value.strip()
        elif key:
            fields[key] += "," + part
    return fields


def release_entries(policy: str) -> list[dict[str, str]]:
    """One dict per package file of `apt-cache policy`: its release fields plus site (the origin host)."""
    entries: list[dict[str, str]] = []
    for line in policy.splitlines():
        stripped = line.strip()
        if stripped.startswith("release "):
            entries.append(_fields(stripped[len("release "):]))
        elif stripped.startswith("origin ") and entries:
            entries[-1]["site"] = stripped[len("origin "):].strip()
    return [entry for entry in entries if entry.get("a") != "now"]


def patterns(config: str, distro_id: str, codename: str) -> list[dict[str, str]]:
    """The Origins-Pattern and Allowed-Origins entries of `apt-config dump`, variables substituted, keys normalised."""
    def substitute(text: str) -> str:
        return text.replace("${distro_id}", distro_id).replace("${distro_codename}", codename)

    found: list[dict[str, str]] = []
    for line in config.splitlines():
        if match := _PATTERN_LINE.match(line.strip()):
            found.append({_KEYS.get(key, key): value for key, value in _fields(substitute(match["pattern"])).items()})
        elif match := _LEGACY_LINE.match(line.strip()):
            found.append({"o": substitute(match["origin"]), "a": substitute(match["archive"])})
    return found


def _matches(entry: dict[str, str], pattern: dict[str, str]) -> bool:
    return bool(pattern) and all(fnmatch.fnmatchcase(entry.get(key, ""), value) for key, value in pattern.items())


def unpatched_apt_sources(policy: str, config: str, distro_id: str, codename: str) -> list[str]:
    """Third-party sources that no pattern matches, as 'o=<origin>,n=<codename>' (sorted, unique)."""
    allowed = patterns(config, distro_id, codename)
    left = {
        f"o={entry.get('o', '')},n={entry.get('n', '')}"
        for entry in release_entries(policy)
        if entry.get("o", "") not in DISTRIBUTION_ORIGINS and not any(_matches(entry, p) for p in allowed)
    }
    return sorted(left)


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"unpatched_apt_sources": unpatched_apt_sources}
