"""Live state of prodready.webstack.base, and its refusal of bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import assert_readiness, assert_role_refuses, unit_journal

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures"


def test_packages_installed(host: Any) -> None:
    for name in ("acl", "curl", "jq", "sudo", "chrony", "unattended-upgrades", "tree"):
        assert host.package(name).is_installed, name


def test_time_zone_and_locale(host: Any) -> None:
    assert host.file("/etc/localtime").linked_to.endswith("/Europe/Berlin")
    assert host.check_output("date +%Z") in {"CET", "CEST"}
    assert "LANG=en_US.UTF-8" in host.file("/etc/default/locale").content_string
    assert "en_US.utf8" in host.check_output("locale -a")


def test_chrony_runs_with_configured_sources(host: Any) -> None:
    assert host.service("chrony").is_running, unit_journal(host, "chrony")
    assert host.service("chrony").is_enabled
    sources = host.check_output("chronyc -n sources")
    assert "127.0.0.1" in sources
    assert "pool.ntp.org" not in host.check_output("chronyc -n sourcestats; grep -E '^(pool|server)' /etc/chrony/chrony.conf || true")


def test_unattended_upgrades_take_security_updates_only(host: Any) -> None:
    periodic = host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in periodic
    assert 'APT::Periodic::Update-Package-Lists "1";' in periodic
    assert host.service("apt-daily-upgrade.timer").is_running
    codename = host.system_info.codename
    dry_run = host.run("unattended-upgrade --dry-run --debug 2>&1 | grep -m1 'Allowed origins are'")
    assert f"codename={codename}-security" in dry_run.stdout, dry_run.stdout
    assert f"codename={codename},label=Debian," not in dry_run.stdout  # point releases are not automatic


def test_pending_security_updates_were_applied(host: Any) -> None:
    """base_unattended_upgrades_run_now: the converge left nothing for tonight's run."""
    pending = host.run("unattended-upgrade --dry-run -v")
    assert "No packages found that can be upgraded unattended" in pending.stdout, pending.stdout[-2000:]


@pytest.mark.parametrize("pocket", ["security", "updates"])
def test_security_and_updates_pockets_are_apt_sources(host: Any, pocket: str) -> None:
    """debootstrap images (and some cloud images) carry neither; -updates holds stable-release fixes
    (Ubuntu 24.04's fail2ban for Python 3.12)."""
    codename = host.system_info.codename
    policy = host.check_output("apt-cache policy")
    assert f"{codename}-{pocket}" in policy, policy
    ours = host.file(f"/etc/apt/sources.list.d/prodready-{pocket}.list")
    others = host.run(f"grep -rlE '^[^#]*{codename}-{pocket}' /etc/apt/sources.list /etc/apt/sources.list.d/ "
                      f"| grep -v prodready-{pocket}").stdout.strip()
    assert ours.exists != bool(others), f"exactly one place should carry the {pocket} pocket"


PATCHED_ITEM = "Every apt source is patched automatically"
_ITEM = f"(prodready_readiness | selectattr('item', 'equalto', '{PATCHED_ITEM}') | first)"
TEST_REPO = "/srv/prodready-test-repo"


def test_a_third_party_source_outside_the_origins_fails_the_readiness_item(host: Any) -> None:
    """PGDG and deadsnakes were never patched while "Security upgrades automatic" passed: the item reads
    the live sources (apt-cache policy) against the merged Origins-Pattern list. A flat file repository
    with its own Origin stands in for a third-party repository."""
    release = "Origin: prodready-test\nLabel: prodready-test\nSuite: prodready\nCodename: prodready\n"
    package = "Package: prodready-dummy\nVersion: 1.0\nArchitecture: all\nFilename: ./dummy.deb\nSize: 1\nDescription: test\n"
    host.check_output(f"mkdir -p {TEST_REPO} && printf '{release}' > {TEST_REPO}/Release && printf '{package}' > {TEST_REPO}/Packages"
                      f" && echo 'deb [trusted=yes] file:{TEST_REPO} ./' > /etc/apt/sources.list.d/prodready-test.list"
                      " && apt-get update -qq")
    try:
        assert_readiness(host, "base", [f"not {_ITEM}.passed", f"{_ITEM}.detail is search('o=prodready-test,n=prodready')"])
        # Another role's snippet (as postgresql's pgdg.yml and python's deadsnakes.yml write) after base's #clear.
        host.check_output("echo 'Unattended-Upgrade::Origins-Pattern { \"origin=prodready-test,codename=prodready\"; };'"
                          " > /etc/apt/apt.conf.d/53prodready-unattended-upgrades-test")
        assert_readiness(host, "base", [f"{_ITEM}.passed"])
    finally:
        host.run(f"rm -rf {TEST_REPO} /etc/apt/sources.list.d/prodready-test.list /etc/apt/apt.conf.d/53prodready-unattended-upgrades-test"
                 " && apt-get update -qq")
    assert_readiness(host, "base", [f"{_ITEM}.passed", "prodready_readiness | rejectattr('passed') | list | length == 0"])


def test_journal_is_persistent_and_capped(host: Any) -> None:
    config = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "Storage=persistent" in config and "SystemMaxUse=200M" in config
    assert host.run("find /var/log/journal -name 'system*.journal' | grep -q .").rc == 0
    assert host.service("systemd-journald").is_running


def test_extra_ca_is_trusted(host: Any) -> None:
    pem = (FIXTURES / "test-ca.crt").read_text().strip().splitlines()
    bundle = host.file("/etc/ssl/certs/ca-certificates.crt").content_string
    assert pem[1] in bundle
    verify = host.run("openssl verify /usr/local/share/ca-certificates/prodready-test-ca.crt")
    assert verify.rc == 0 and verify.stdout.strip().endswith("OK"), verify.stderr


def test_service_account(host: Any) -> None:
    user = host.user("app")
    assert user.exists and user.shell == "/usr/sbin/nologin" and user.home == "/srv/app"
    assert user.password in {"!", "*", "!*"}
    home = host.file("/srv/app")
    assert home.is_directory and home.user == "app" and home.mode == 0o750
    assert "app  hard  nofile  65536" in host.file("/etc/security/limits.d/60-prodready.conf").content_string


def test_admin_account_has_key_and_sudo(host: Any) -> None:
    user = host.user("deploy")
    assert user.exists and "sudo" in user.groups
    assert host.check_output("passwd -S deploy").split()[1] == "L"
    keys = host.file("/home/deploy/.ssh/authorized_keys")
    assert keys.mode == 0o600 and keys.user == "deploy"
    assert (FIXTURES / "ssh" / "id_ed25519.pub").read_text().split()[1] in keys.content_string
    assert "(ALL : ALL) NOPASSWD: ALL" in host.check_output("sudo -l -U deploy")
    assert host.run("visudo -c").rc == 0


BAD_INPUT = [
    pytest.param({"base_apt_upgrade": "sometimes"}, ["base_apt_upgrade", "sometimes"], id="choice"),
    pytest.param({"base_swap_file_size_mb": "lots"}, ["base_swap_file_size_mb"], id="type"),
    pytest.param({"base_timezone": "Mars/Olympus Mons"}, ["base_timezone must be a tz name"], id="timezone"),
    pytest.param({"base_ca_certificates": [{"name": "corp", "content": "not a certificate"}]},
                 ["base_ca_certificates[0]", "PEM certificate"], id="ca-not-pem"),
    pytest.param({"base_admin_users": [{"name": "alice"}]}, ["base_admin_users[0] (alice)", "ssh_authorized_keys"],
                 id="admin-without-key"),
    pytest.param({"ansible_facts": {"distribution": "Fedora", "distribution_major_version": "40"}},
                 ["Unsupported platform Fedora-40"], id="distribution"),
]


@pytest.mark.parametrize("bad_vars, needles", BAD_INPUT)
def test_bad_input_stops_before_any_change(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "base", bad_vars, needles)
