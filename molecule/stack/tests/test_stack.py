"""playbooks/site.yml on a live host: the readiness report passes, bad input stops everything."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import PROJECT, VENV_COLLECTIONS, assert_refused, run_play

EXPECTED_ITEMS = {
    "Security upgrades automatic", "Time synchronisation running (chrony)", "Journal persistent and size-capped",
    "Service account without login shell", "SSH password login disabled", "SSH root login disabled",
    "SSH limited to listed accounts", "Firewall denies inbound by default", "Firewall keeps SSH reachable",
    "fail2ban guards sshd", "Kernel hardening parameters applied", "Password quality enforced (pam_pwquality)",
    "App release serving from the live slot", "App readiness check answers 200 (database, Redis)",
    "App web unit sandboxed (systemd-analyze security <= 2.0)", "nginx upstream points at the live slot",
}


def test_app_answers_through_nginx_over_tls(host: Any) -> None:
    out = host.run("curl -sk --resolve app.stack.test:443:127.0.0.1 https://app.stack.test/health/ready")
    assert json.loads(out.stdout or "{}").get("status") == "ok", out.stdout + out.stderr


def test_readiness_report_passes(host: Any, tmp_path: Path) -> None:
    name = host.backend.hostname
    first_backup = run_play(PROJECT / "playbooks" / "backup.yml", limit=name)
    assert first_backup.rc == 0, first_backup.output[-4000:]
    report_path = tmp_path / "report.json"
    result = run_play(PROJECT / "playbooks" / "verify.yml", limit=name,
                      env_extra={"PRODREADY_REPORT": str(report_path)})
    assert result.rc == 0, result.output[-4000:]
    assert "Passed: " in result.output and "Failed: 0" in result.output
    report = json.loads(report_path.read_text())
    assert report["failed"] == 0 and report["hosts"] == [name]
    assert {item["item"] for item in report["items"]} >= EXPECTED_ITEMS
    assert all(item["passed"] and item["detail"] for item in report["items"])


def test_report_fails_when_an_item_fails(host: Any, tmp_path: Path) -> None:
    """Break one checklist item on the live host: the report names it and the run fails."""
    name = host.backend.hostname
    if not name.endswith("debian12"):
        pytest.skip("checked once")
    host.run("systemctl stop fail2ban")
    try:
        result = run_play(PROJECT / "playbooks" / "verify.yml", limit=name,
                          env_extra={"PRODREADY_REPORT": str(tmp_path / "report.json")})
    finally:
        host.run("systemctl start fail2ban")
    assert result.rc != 0
    assert f"{name}: fail2ban guards sshd" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failed"] == 1


def test_site_refuses_bad_input_before_any_change(host: Any) -> None:
    """A hardening mistake stops site.yml in its first play, before base changes anything."""
    name = host.backend.hostname
    if not name.endswith("debian12"):
        pytest.skip("checked once")
    result = run_play(PROJECT / "playbooks" / "site.yml", limit=name,
                      extra_vars={"hardening_ssh_allow_users": [], "base_extra_packages": ["sl"]})
    assert_refused(result, name, "hardening_ssh_allow_users and hardening_ssh_allow_groups are both empty")
    assert "Check every input before changing anything" in result.output
    assert not host.package("sl").is_installed


def test_verify_runs_from_the_built_and_installed_collection(host: Any, tmp_path: Path) -> None:
    """ansible-galaxy collection build -> install into a clean path -> run a playbook by FQCN,
    with the checkout out of the collections path."""
    name = host.backend.hostname
    if not name.endswith("debian12"):
        pytest.skip("checked once")
    subprocess.run(["ansible-galaxy", "collection", "build", "-f", "--output-path", str(tmp_path), str(PROJECT)],
                   check=True, capture_output=True)
    tarball = next(tmp_path.glob("prodready-webstack-*.tar.gz"))
    # --force: molecule's environment lists the checkout's link, which galaxy would take as installed.
    done = subprocess.run(["ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", str(tmp_path / "installed"),
                           str(tarball)], check=True, capture_output=True, text=True)
    installed = tmp_path / "installed" / "ansible_collections" / "prodready" / "webstack"
    assert (installed / "playbooks" / "verify.yml").is_file() and not installed.is_symlink(), done.stdout
    result = run_play(Path("prodready.webstack.verify"), limit=name, env_extra={
        "ANSIBLE_COLLECTIONS_PATH": ":".join([str(tmp_path / "installed"), *map(str, VENV_COLLECTIONS)]),
        "PRODREADY_REPORT": str(tmp_path / "report.json")})
    assert result.rc == 0 and "Failed: 0" in result.output, result.output[-3000:]
