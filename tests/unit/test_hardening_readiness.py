"""The hardening role's readiness items (roles/hardening/tasks/verify.yml) on measured outputs.

The item expressions are rendered with Ansible's own templating, as in a play, on `ss -Hltnp`,
`systemctl show ssh.socket`, `ufw status`, `needrestart -b` and apport outputs of hosts the Molecule
scenarios cannot be (Ubuntu 24.04 with ssh.socket on port 22, a real apport package).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.template import trust_as_template

from conftest import ROLES, role_templar, trusted

VERIFY = ROLES / "hardening" / "tasks" / "verify.yml"
SSHD_22 = ['LISTEN 0 128 0.0.0.0:22 0.0.0.0:* users:(("sshd",pid=54,fd=6))',
           'LISTEN 0 128 [::]:22 [::]:* users:(("sshd",pid=54,fd=7))']
SSHD_2222 = [line.replace(":22 ", ":2222 ") for line in SSHD_22]
# Ubuntu 24.04 after a connection: the socket's listener, held by systemd and the inherited sshd.
SOCKET_22 = ['LISTEN 0 4096 *:22 *:* users:(("sshd",pid=124,fd=3),("systemd",pid=1,fd=34))']
SOCKET_SHOW_22 = ["ActiveState=active", "Listen=[::]:22 (Stream)"]
SOCKET_OFF = ["ActiveState=inactive", "Listen=[::]:22 (Stream)"]


def _result(stdout: str = "", rc: int = 0, stderr: str = "") -> dict[str, Any]:
    return {"rc": rc, "stdout": stdout, "stdout_lines": stdout.splitlines(), "stderr": stderr}


def measured(**changes: dict[str, Any]) -> dict[str, Any]:
    """Registered results of a converged Debian host with sshd on port 22; `changes` replace some."""
    results = {
        "__hardening_sshd_t": _result("port 22\npasswordauthentication no\nkbdinteractiveauthentication no\n"
                                      "permitrootlogin no\nallowusers deploy"),
        "__hardening_ss": _result("\n".join(SSHD_22)),
        "__hardening_ssh_socket_live": _result("\n".join(SOCKET_OFF)),
        "__hardening_ufw_live": _result("Status: inactive"),
        "__hardening_needrestart": _result("NEEDRESTART-VER: 3.6"),
        "__hardening_apport_live": _result("not-installed\ninactive\nenabled=unset"),
        "__hardening_nft": _result("chain input {\n type filter hook input priority filter; policy drop;\n"
                                   ' tcp dport 22 accept comment "ssh"\n}'),
        "__hardening_f2b": _result("Currently banned: 0"),
        "__hardening_sysctl_live": _result(""),
        "__hardening_pam_password": {"content": base64.b64encode(b"password requisite pam_pwquality.so retry=3\n").decode()},
    }
    return results | changes


def items(results: dict[str, Any], **role_vars: Any) -> dict[str, dict[str, Any]]:
    """The readiness items rendered from `results`, by name."""
    record = next(task for task in yaml.safe_load(VERIFY.read_text()) if "ansible.builtin.set_fact" in task)
    variables = trusted(record["vars"]) | results | {"hardening_sysctl_apply": False} | role_vars
    rendered = role_templar("hardening", **variables).template(trust_as_template("{{ __items }}"))
    return {item["item"]: item for item in rendered}


def item(name: str, results: dict[str, Any], **role_vars: Any) -> dict[str, Any]:
    found = items(results, **role_vars)[name]
    return {"passed": found["passed"] in (True, "True"), "detail": " ".join(str(found["detail"]).split())}


LISTEN = "SSH listens on the configured port only"


def test_sshd_on_the_configured_port_passes() -> None:
    assert item(LISTEN, measured()) == {
        "passed": True, "detail": "tcp 0.0.0.0:22, [::]:22 (sshd); configured port 22"}


def test_socket_kept_port_22_while_sshd_config_says_2222() -> None:
    """The bug on Ubuntu 24.04: sshd -T says 2222, the live listener (the socket) is still 22."""
    found = item(LISTEN, measured(__hardening_ss=_result("\n".join(SOCKET_22)),
                                  __hardening_ssh_socket_live=_result("\n".join(SOCKET_SHOW_22))), hardening_ssh_port=2222)
    assert not found["passed"]
    assert found["detail"] == "tcp *:22, [::]:22 (sshd, ssh.socket active); configured port 2222"


def test_socket_alone_before_the_first_connection_is_measured() -> None:
    """No sshd process yet: only systemd holds the port; ssh.socket's Listen= is what listens."""
    only_systemd = ['LISTEN 0 4096 *:2222 *:* users:(("systemd",pid=1,fd=34))']
    found = item(LISTEN, measured(__hardening_ss=_result("\n".join(only_systemd)),
                                  __hardening_ssh_socket_live=_result("ActiveState=active\nListen=[::]:2222 (Stream)")),
                 hardening_ssh_port=2222)
    assert found == {"passed": True, "detail": "tcp [::]:2222 (no sshd listener, ssh.socket active); configured port 2222"}


def test_both_ports_open_fails() -> None:
    found = item(LISTEN, measured(__hardening_ss=_result("\n".join(SSHD_2222 + SOCKET_22)),
                                  __hardening_ssh_socket_live=_result("\n".join(SOCKET_SHOW_22))), hardening_ssh_port=2222)
    assert not found["passed"] and "0.0.0.0:2222" in found["detail"] and "*:22" in found["detail"]


@pytest.mark.parametrize("addresses, passed", [
    (["10.0.0.5"], True), (["10.0.0.5:2222"], True), (["10.0.0.6"], False), ([], True),
])
def test_listen_addresses(addresses: list[str], passed: bool) -> None:
    bound = ['LISTEN 0 128 10.0.0.5:2222 0.0.0.0:* users:(("sshd",pid=54,fd=6))']
    found = item(LISTEN, measured(__hardening_ss=_result("\n".join(bound))), hardening_ssh_port=2222,
                 hardening_ssh_listen_addresses=addresses)
    assert found["passed"] is passed, found


def test_ss_missing_fails() -> None:
    assert not item(LISTEN, measured(__hardening_ss=_result("", rc=2)))["passed"]


@pytest.mark.parametrize("status, firewall, passed, detail", [
    ("Status: active\n\nTo Action From", True, False, "ufw active: it drops what inet prodready opens"),
    ("Status: active", False, True, "ufw active (hardening_firewall_enabled is false)"),
    ("Status: inactive", True, True, "ufw inactive"),
])
def test_ufw(status: str, firewall: bool, passed: bool, detail: str) -> None:
    found = item("No ufw shadowing the firewall", measured(__hardening_ufw_live=_result(status)), hardening_firewall_enabled=firewall)
    assert found == {"passed": passed, "detail": detail}


def test_ufw_not_installed() -> None:
    found = item("No ufw shadowing the firewall", measured(__hardening_ufw_live=_result("", rc=2)))
    assert found == {"passed": True, "detail": "ufw not installed"}


RESTART = "Services run current libraries"


def test_services_on_replaced_libraries_fail_named() -> None:
    out = "NEEDRESTART-VER: 3.6\nNEEDRESTART-SVC: nginx.service\nNEEDRESTART-SVC: postgresql@15-main.service"
    found = item(RESTART, measured(__hardening_needrestart=_result(out)))
    assert found == {"passed": False, "detail": "restart needed (replaced libraries still mapped): nginx.service, "
                                                "postgresql@15-main.service"}


def test_systemd_itself_on_a_replaced_library_is_named_not_failed() -> None:
    """Seen on a converged Debian 12 container: PID 1 still maps a library apt replaced during the play."""
    out = "NEEDRESTART-VER: 3.6\nNEEDRESTART-SVC: systemd-manager\nNEEDRESTART-SVC: user@1000.service"
    found = item(RESTART, measured(__hardening_needrestart=_result(out)))
    assert found == {"passed": True, "detail": "no service on a replaced library (needrestart); systemd-manager, "
                                               "user@1000.service too: systemctl daemon-reexec"}
    mixed = item(RESTART, measured(__hardening_needrestart=_result(out + "\nNEEDRESTART-SVC: redis-server.service")))
    assert mixed == {"passed": False, "detail": "restart needed (replaced libraries still mapped): redis-server.service"}


def test_no_stale_service_passes() -> None:
    assert item(RESTART, measured()) == {"passed": True, "detail": "no service on a replaced library (needrestart)"}


def test_needrestart_missing_fails_unless_not_wanted() -> None:
    gone = measured(__hardening_needrestart=_result("", rc=2, stderr="No such file or directory"))
    assert not item(RESTART, gone)["passed"]
    assert item(RESTART, gone, hardening_packages=["debsums"]) == {"passed": True, "detail": "needrestart not installed: not measured"}


APPORT = "Crash dumps off (apport)"


@pytest.mark.parametrize("out, passed", [
    ("not-installed\ninactive\nenabled=unset", True),
    ("installed\ninactive\nenabled=0", True),
    ("installed\nactive\nenabled=1", False),      # Ubuntu's default
    ("installed\ninactive\nenabled=1", False),    # starts again at boot
    ("installed\nactive\nenabled=0", False),      # core_pattern still points at apport
])
def test_apport(out: str, passed: bool) -> None:
    assert item(APPORT, measured(__hardening_apport_live=_result(out)))["passed"] is passed


def test_apport_allowed_when_core_dumps_are() -> None:
    on = measured(__hardening_apport_live=_result("installed\nactive\nenabled=1"))
    assert item(APPORT, on, hardening_core_dumps_disabled=False)["passed"]


def test_task_files_parse() -> None:
    for name in ("ssh", "firewall", "accounts", "preflight"):
        assert yaml.safe_load(Path(ROLES / "hardening" / "tasks" / f"{name}.yml").read_text())
