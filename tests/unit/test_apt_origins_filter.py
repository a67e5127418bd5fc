"""Unit tests for unpatched_apt_sources: third-party apt sources that unattended-upgrades skips."""

from __future__ import annotations

import yaml

from conftest import ROLES, load_plugin

apt_origins = load_plugin("filter", "apt_origins")

# apt-cache policy on an Ubuntu 22.04 host with the deadsnakes PPA and PGDG (release lines as apt prints them).
POLICY = """Package files:
 100 /var/lib/dpkg/status
     release a=now
 500 https://apt.postgresql.org/pub/repos/apt jammy-pgdg/main amd64 Packages
     release o=apt.postgresql.org,a=jammy-pgdg,n=jammy-pgdg,l=PostgreSQL for Debian/Ubuntu repository,c=main,b=amd64
     origin apt.postgresql.org
 500 https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu jammy/main amd64 Packages
     release v=22.04,o=LP-PPA-deadsnakes,a=jammy,n=jammy,l=New Python Versions,c=main,b=amd64
     origin ppa.launchpadcontent.net
 500 http://security.ubuntu.com/ubuntu jammy-security/main amd64 Packages
     release v=22.04,o=Ubuntu,a=jammy-security,n=jammy,l=Ubuntu,c=main,b=amd64
     origin security.ubuntu.com
 500 http://archive.ubuntu.com/ubuntu jammy-updates/main amd64 Packages
     release v=22.04,o=Ubuntu,a=jammy-updates,n=jammy,l=Ubuntu,c=main,b=amd64
     origin archive.ubuntu.com
Pinned packages:
"""
# base's own list (52prodready-unattended-upgrades: #clear, then the distribution's security origins).
BASE_ONLY = """Unattended-Upgrade::Origins-Pattern "";
Unattended-Upgrade::Origins-Pattern:: "origin=${distro_id},archive=${distro_codename}-security";
Unattended-Upgrade::Origins-Pattern:: "origin=${distro_id}ESMApps,archive=${distro_codename}-apps-security";
"""


def _role_patterns(role: str) -> str:
    """The apt-config dump lines of the Origins-Pattern snippet a role writes (its vars/main.yml list)."""
    variables = yaml.safe_load((ROLES / role / "vars" / "main.yml").read_text())
    key = f"__{role}_unattended_upgrades_origins"
    return "".join(f'Unattended-Upgrade::Origins-Pattern:: "{pattern}";\n' for pattern in variables[key])


def test_base_alone_leaves_pgdg_and_deadsnakes_unpatched() -> None:
    assert apt_origins.unpatched_apt_sources(POLICY, BASE_ONLY, "Ubuntu", "jammy") == [
        "o=LP-PPA-deadsnakes,n=jammy", "o=apt.postgresql.org,n=jammy-pgdg"]


def test_the_roles_snippets_cover_their_repositories() -> None:
    config = BASE_ONLY + _role_patterns("postgresql") + _role_patterns("python")
    assert apt_origins.unpatched_apt_sources(POLICY, config, "Ubuntu", "jammy") == []


def test_a_pattern_must_match_every_pair() -> None:
    config = 'Unattended-Upgrade::Origins-Pattern:: "origin=apt.postgresql.org,codename=${distro_codename}-other";\n'
    assert "o=apt.postgresql.org,n=jammy-pgdg" in apt_origins.unpatched_apt_sources(POLICY, config, "Ubuntu", "jammy")


def test_wildcards_and_short_keys() -> None:
    config = 'Unattended-Upgrade::Origins-Pattern:: "o=LP-PPA-*,n=${distro_codename}";\n'
    assert apt_origins.unpatched_apt_sources(POLICY, config, "Ubuntu", "jammy") == ["o=apt.postgresql.org,n=jammy-pgdg"]


def test_a_label_with_a_comma_is_one_field() -> None:
    assert apt_origins.release_entries(" 500 x\n     release o=X,l=Packages, the good ones,n=y\n") == [
        {"o": "X", "l": "Packages, the good ones", "n": "y"}]


def test_distribution_archives_are_not_reported() -> None:
    """Their non-security pockets are left to the operator on purpose (point releases are not automatic)."""
    policy = (" 500 http://deb.debian.org/debian bookworm/main amd64 Packages\n"
              "     release v=12.8,o=Debian,a=stable,n=bookworm,l=Debian,c=main,b=amd64\n"
              "     origin deb.debian.org\n")
    assert apt_origins.unpatched_apt_sources(policy, "", "Debian", "bookworm") == []


def test_the_legacy_allowed_origins_list_counts_too() -> None:
    """Ubuntu's 50unattended-upgrades lists its origins as Allowed-Origins "<origin>:<archive>"."""
    config = 'Unattended-Upgrade::Allowed-Origins:: "LP-PPA-deadsnakes:${distro_codename}";\n'
    assert apt_origins.unpatched_apt_sources(POLICY, config, "Ubuntu", "jammy") == ["o=apt.postgresql.org,n=jammy-pgdg"]
