"""Live state of prodready.webstack.hardening, and its refusal of bad input."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from conftest import assert_readiness, assert_refused, assert_role_refuses, checked_once, container_ip, role_play, run_play, unit_journal

KEY = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "ssh" / "id_ed25519"
SSH = "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5"


@pytest.fixture()
def key_in_container(host: Any) -> str:
    """The test admin's private key, placed inside the container for loopback logins."""
    path = "/root/.prodready-test-key"
    host.run(f"install -m 600 /dev/null {path} && cat > {path} <<'EOF'\n{KEY.read_text()}EOF")
    return path


def test_sshd_effective_settings(host: Any) -> None:
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    expected = {
        "passwordauthentication": "no", "kbdinteractiveauthentication": "no", "permitrootlogin": "no",
        "allowusers": "deploy", "maxauthtries": "3", "x11forwarding": "no", "allowtcpforwarding": "no",
        "clientaliveinterval": "300", "clientalivecountmax": "2", "permitemptypasswords": "no",
        "loglevel": "VERBOSE", "banner": "/etc/issue.net",
    }
    assert {k: effective.get(k) for k in expected} == expected
    assert "sha1" not in effective["macs"] and "cbc" not in effective["ciphers"]
    assert host.file("/etc/ssh/sshd_config").mode == 0o600
    assert host.service("ssh").is_running, unit_journal(host, "ssh")


def test_admin_logs_in_with_key(host: Any, key_in_container: str) -> None:
    login = host.run(f"{SSH} -i {key_in_container} deploy@127.0.0.1 id -un")
    assert login.rc == 0 and login.stdout.strip() == "deploy", login.stderr


def test_password_login_refused(host: Any) -> None:
    attempt = host.run(f"{SSH} -o PubkeyAuthentication=no -o PreferredAuthentications=password deploy@127.0.0.1 true")
    assert attempt.rc == 255 and "Permission denied (publickey)" in attempt.stderr, attempt.stderr


def test_root_refused_even_with_a_valid_key(host: Any, key_in_container: str) -> None:
    host.run("install -d -m 700 /root/.ssh && cp /home/deploy/.ssh/authorized_keys /root/.ssh/authorized_keys")
    try:
        attempt = host.run(f"{SSH} -i {key_in_container} root@127.0.0.1 true")
        assert attempt.rc == 255 and "Permission denied" in attempt.stderr, attempt.stderr
    finally:
        host.run("rm -f /root/.ssh/authorized_keys")


def test_firewall_ruleset(host: Any) -> None:
    chain = host.check_output("nft list chain inet prodready input")
    assert "policy drop;" in chain
    assert 'tcp dport 22 accept comment "ssh"' in chain
    assert 'ip saddr 192.0.2.10 tcp dport { 9100, 9113, 9121, 9180, 9187, 9256 } accept comment "monitoring"' in chain
    assert 'ip6 saddr 2001:db8::10 tcp dport' in chain
    assert 'ip saddr 198.51.100.0/24 tcp dport 5432 accept comment "database"' in chain
    assert 'ip saddr 203.0.113.5 udp dport 514 accept comment "syslog"' in chain
    # A rule that says public: true, and only such a rule, opens its port to every source.
    assert '\n\t\ttcp dport 587 accept comment "submission"' in chain
    assert host.service("nftables").is_enabled


def test_firewall_drops_unlisted_port_but_not_ssh(host: Any) -> None:
    """From the Docker host: SSH answers, a listening but unlisted port does not."""
    ip = container_ip(host.backend.hostname)
    host.run("systemd-run --unit prodready-probe --collect python3 -m http.server 8080")
    try:
        host.run("for i in $(seq 40); do ss -ltn | grep -q ':8080 ' && break; sleep 0.25; done")
        assert host.socket("tcp://0.0.0.0:8080").is_listening
        with socket.create_connection((ip, 22), timeout=5) as ssh:
            assert ssh.recv(64).startswith(b"SSH-2.0-")
        with pytest.raises(OSError):  # dropped: the connect times out
            socket.create_connection((ip, 8080), timeout=3).close()
        assert host.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/").stdout == "200"
    finally:
        host.run("systemctl stop prodready-probe")


def test_fail2ban_jail_bans_into_nftables(host: Any) -> None:
    assert host.service("fail2ban").is_running, unit_journal(host, "fail2ban")
    status = host.run("fail2ban-client status sshd")
    assert status.rc == 0 and "Journal matches" in status.stdout, status.stderr
    host.run("fail2ban-client set sshd banip 203.0.113.99")
    try:
        assert "203.0.113.99" in host.check_output("nft list ruleset")
    finally:
        host.run("fail2ban-client set sshd unbanip 203.0.113.99")


def test_kernel_and_module_settings(host: Any) -> None:
    sysctl = host.file("/etc/sysctl.d/90-prodready-hardening.conf").content_string
    for line in ("kernel.kptr_restrict = 2", "net.ipv4.tcp_syncookies = 1", "fs.suid_dumpable = 0",
                 "net.ipv4.conf.all.accept_redirects = 0"):
        assert line in sysctl
    modprobe = host.file("/etc/modprobe.d/prodready-hardening.conf").content_string
    assert "install dccp /bin/true" in modprobe and "install usb-storage /bin/true" in modprobe


def test_login_password_and_shell_policy(host: Any) -> None:
    login_defs = host.file("/etc/login.defs").content_string
    for line in ("PASS_MAX_DAYS\t365", "UMASK\t027", "SHA_CRYPT_MIN_ROUNDS\t5000"):
        assert line in login_defs
    assert "pam_pwquality.so" in host.file("/etc/pam.d/common-password").content_string
    assert "minlen = 14" in host.file("/etc/security/pwquality.conf").content_string
    weak = host.run("echo 'short1' | pwscore")
    assert weak.rc != 0
    assert host.check_output("bash -lc 'echo $TMOUT'") == "900"
    assert "*     hard  core  0" in host.file("/etc/security/limits.d/10-prodready-coredump.conf").content_string
    assert "Storage=none" in host.check_output("systemd-analyze cat-config systemd/coredump.conf")


def test_packages_and_file_modes(host: Any) -> None:
    for name in ("telnet", "inetutils-telnet", "rsh-client", "xinetd"):  # prepare.yml installed inetutils-telnet
        assert not host.package(name).is_installed, name
    for name in ("libpam-tmpdir", "needrestart", "debsums", "apt-show-versions"):
        assert host.package(name).is_installed, name
    assert host.file("/etc/crontab").mode == 0o600
    assert host.file("/etc/cron.d").mode == 0o700
    assert "$nrconf{restart} = 'l';" in host.file("/etc/needrestart/conf.d/90-prodready.conf").content_string


def test_active_ufw_was_disabled(host: Any) -> None:
    """prepare.yml enabled ufw; the role disabled it (off at boot too) and its nftables table rules."""
    assert host.check_output("ufw status").startswith("Status: inactive")
    assert "ENABLED=no" in host.file("/etc/ufw/ufw.conf").content_string
    assert "policy drop;" in host.check_output("nft list chain inet prodready input")


def test_active_ufw_refused_when_the_role_may_not_disable_it(host: Any) -> None:
    name = checked_once(host)
    host.check_output("ufw --force enable")
    try:
        result = run_play(role_play("hardening"), limit=name, extra_vars={"hardening_firewall_disable_ufw": False})
        assert_refused(result, name, "ufw is active", "hardening_firewall_disable_ufw")
    finally:
        host.run("ufw disable")


def test_apport_switched_off(host: Any) -> None:
    """prepare.yml installed and started an apport stand-in (Debian has no apport package)."""
    assert "enabled=0" in host.file("/etc/default/apport").content_string.splitlines()
    assert host.run("systemctl is-enabled apport.service").stdout.strip() == "masked"
    assert not host.service("apport").is_running


def test_readiness_items_pass(host: Any) -> None:
    result = assert_readiness(host, "hardening", ["prodready_readiness | rejectattr('passed') | list | length == 0"], show=True)
    for needle in ("SSH listens on the configured port only", "tcp 0.0.0.0:22, [::]:22 (sshd)",
                   "ufw inactive", "no service on a replaced library", "apport installed, service inactive, enabled=0"):
        assert needle in result.output, needle


def test_readiness_names_a_service_on_a_replaced_library(host: Any) -> None:
    """A service keeps a library mapped after the file was replaced (what a security update does):
    needrestart stays list-only, and the readiness item fails naming the unit until it restarts."""
    lib = "/usr/lib/x86_64-linux-gnu/libprodready-stale.so.1"
    host.check_output(f"cp -L /usr/lib/x86_64-linux-gnu/libz.so.1 {lib}")
    host.check_output("systemd-run --unit prodready-stale --collect python3 -c "
                      f"'import ctypes, time; ctypes.CDLL(\"{lib}\"); time.sleep(300)'")
    try:
        mapped = "grep -q libprodready-stale /proc/$(systemctl show -p MainPID --value prodready-stale)/maps"
        host.run(f"for i in $(seq 40); do {mapped} && break; sleep 0.25; done; rm -f {lib}")
        stale = assert_readiness(host, "hardening", [
            "prodready_readiness | rejectattr('passed') | map(attribute='item') | list == ['Services run current libraries']"], show=True)
        assert "restart needed (replaced libraries still mapped): prodready-stale.service" in stale.output
    finally:
        host.run(f"systemctl stop prodready-stale; rm -f {lib}")
    assert_readiness(host, "hardening", ["prodready_readiness | rejectattr('passed') | list | length == 0"])


def _facts(distribution: str = "Debian", major: str = "12") -> dict[str, Any]:
    return {"distribution": distribution, "distribution_major_version": major,
            "virtualization_role": "guest", "virtualization_type": "docker"}


BAD_INPUT = [
    pytest.param({"hardening_ssh_allow_users": [], "hardening_ssh_allow_groups": []},
                 ["hardening_ssh_allow_users and hardening_ssh_allow_groups are both empty"], id="empty-admin-list"),
    pytest.param({"hardening_ssh_port": 70000}, ["hardening_ssh_port (70000)"], id="port-range"),
    pytest.param({"hardening_ssh_permit_root_login": "yes"}, ["hardening_ssh_permit_root_login", "yes"], id="choice"),
    pytest.param({"hardening_firewall_monitoring_sources": ["monitoring.example"]},
                 ["hardening_firewall_monitoring_sources must list", "monitoring.example"], id="bad-cidr"),
    pytest.param({"hardening_firewall_rules": [{"name": "syslog"}]}, ["port", "hardening_firewall_rules"], id="rule-without-port"),
    pytest.param({"hardening_ssh_max_auth_tries": "three"}, ["hardening_ssh_max_auth_tries"], id="type"),
    # #19: allow-lists that are the whole Internet, and rules open to everyone without saying so.
    pytest.param({"hardening_firewall_db_sources": ["10.0.1.0/24", "0.0.0.0/0"]},
                 ["hardening_firewall_db_sources lists 0.0.0.0/0, which is the whole Internet"], id="world-open-db"),
    pytest.param({"hardening_firewall_monitoring_sources": ["::/0"]},
                 ["hardening_firewall_monitoring_sources lists ::/0"], id="world-open-monitoring"),
    pytest.param({"hardening_firewall_ssh_sources": ["0.0.0.0/1", "128.0.0.0/1"]},
                 ["hardening_firewall_ssh_sources lists 0.0.0.0/1, 128.0.0.0/1", "leave hardening_firewall_ssh_sources empty"],
                 id="world-open-ssh"),
    pytest.param({"hardening_fail2ban_ignoreip": ["0.0.0.0/0"]}, ["hardening_fail2ban_ignoreip", "never ban anyone"],
                 id="world-open-ignoreip"),
    pytest.param({"hardening_firewall_rules": [{"name": "syslog", "port": 514, "proto": "udp"}]},
                 ["hardening_firewall_rules.syslog (port 514)", "set public: true"], id="rule-open-without-public"),
    pytest.param({"hardening_firewall_rules": [{"name": "pg", "port": 5432, "public": True}]},
                 ["hardening_firewall_rules.pg (port 5432)", "(PostgreSQL) is never opened to everyone"], id="public-internal-port"),
    pytest.param({"hardening_firewall_rules": [{"name": "logs", "port": 514, "sources": ["0.0.0.0/0"]}]},
                 ["hardening_firewall_rules.logs lists 0.0.0.0/0"], id="world-open-rule-sources"),
]


@pytest.mark.parametrize("bad_vars, needles", BAD_INPUT)
def test_bad_input_stops_before_any_change(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "hardening", bad_vars, needles)


def test_refuses_a_firewall_that_cuts_its_own_ssh_source(host: Any, tmp_path: Path) -> None:
    """Over a real SSH connection from the Docker host, an SSH allow-list without the
    controller's address is refused before anything changes."""
    name = checked_once(host)
    key = tmp_path / "id_ed25519"
    key.write_text(KEY.read_text())
    key.chmod(0o600)
    play = role_play("hardening", tasks_from="preflight")
    ssh_vars = {"ansible_connection": "ssh", "ansible_host": container_ip(name), "ansible_user": "deploy",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"}
    refused = run_play(play, limit=name, extra_vars={**ssh_vars, "hardening_firewall_ssh_sources": ["203.0.113.0/24"]})
    assert_refused(refused, name, "hardening_firewall_ssh_sources (203.0.113.0/24) does not include")
    # The private ranges hold every Docker network's gateway (0.0.0.0/0 is refused now: the whole Internet, #19).
    private = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    allowed = run_play(play, limit=name, extra_vars={**ssh_vars, "hardening_firewall_ssh_sources": private})
    assert allowed.rc == 0 and allowed.recap(name).get("changed") == 0, allowed.output[-3000:]


def test_refuses_to_lock_out_its_own_ssh_connection(host: Any) -> None:
    """Connecting as root over SSH while root login is being disabled is refused up front."""
    name = checked_once(host)
    play = role_play("hardening", tasks_from="preflight")
    play[0]["gather_facts"] = False
    result = run_play(play, limit=name, extra_vars={
        "ansible_connection": "ssh", "ansible_user": "root", "ansible_facts": _facts()})
    assert_refused(result, name, "connects over SSH as 'root'", "hardening_ssh_allow_users")
