"""The converged role's state helper (templates/usr/local/sbin/prodready-converged.j2), rendered with
the role's defaults and vars, on scratch paths, with the system commands it reads replaced by fakes
(files under $FAKE say what they print). The molecule stack scenario runs it on real hosts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FakeRoot, render_role_template

FINGERPRINT = "f" * 64
FAKES = {
    "systemctl": """#!/bin/bash
case "$*" in
  *list-unit-files*) cat "$FAKE/enabled" ;;
  *--type=timer*) cat "$FAKE/timers" ;;
  *list-units*) cat "$FAKE/services" ;;
esac
""",
    "dpkg-query": '#!/bin/bash\ncat "$FAKE/packages"\n',
    "nft": '#!/bin/bash\ncat "$FAKE/ruleset"\n',
    "sysctl": '#!/bin/bash\nshift; for key; do echo "$key = 1"; done\n',
    "swapon": "#!/bin/bash\n",
    "pg_lsclusters": '#!/bin/bash\necho "15 main 5432 online postgres /var/lib/postgresql/15/main log"\n',
    "runuser": '#!/bin/bash\ncat "$FAKE/postgresql"\n',
}
STATE = {
    "enabled": "nginx.service enabled enabled\n",
    "timers": "prodready-backup.timer loaded active waiting Backup\n",
    "services": "nginx.service loaded active running nginx\nrun-u7.service loaded active running transient\n",
    "packages": "nginx 1.22 ii\n",
    "ruleset": "table inet prodready {\n\tchain input {\n\t}\n}\ntable inet f2b-table {\n\tset addr-set-sshd {\n\t}\n}\n",
    "postgresql": "role app false true SCRAM-SHA-256$4096:salt$secret-hash\n",
}


class Host(FakeRoot):
    """A scratch root with etc/, home/<user>/.ssh and the rendered helper."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, FAKES, "prodready-converged")
        for directory in ("etc/nginx", "etc/volatile", "home/ops/.ssh"):
            (root / directory).mkdir(parents=True)
        for name, content in STATE.items():
            self.fake(name, content)
        (root / "etc" / "nginx" / "nginx.conf").write_text("worker_processes auto;\n")
        (root / "etc" / "sysctl.conf").write_text("net.ipv4.tcp_syncookies = 1\n")
        self.install(render_role_template(
            "converged", "usr/local/sbin/prodready-converged.j2", ansible_managed="managed",
            __converged_dir=str(root / "state"),
            converged_paths=[str(root / "etc"), str(root / "home") + "/*/.ssh"],
            converged_ignore_paths=[str(root / "etc" / "volatile")]))

    def check(self, fingerprint: str = FINGERPRINT, hours: str = "24") -> subprocess.CompletedProcess[str]:
        return self.run("check", fingerprint, hours)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    h = Host(tmp_path)
    recorded = h.run("record", FINGERPRINT)
    assert recorded.returncode == 0 and recorded.stdout.startswith("recorded "), recorded.stdout + recorded.stderr
    return h


def test_nothing_recorded_means_a_full_converge(tmp_path: Path) -> None:
    done = Host(tmp_path).check()
    assert done.returncode == 1 and "no converged state recorded yet" in done.stdout


def test_an_untouched_host_is_unchanged(host: Host) -> None:
    done = host.check()
    assert done.returncode == 0 and done.stdout.startswith("unchanged since the last full converge"), done.stdout
    assert oct((host.root / "state").stat().st_mode & 0o777) == "0o700"


def test_changed_inputs_mean_a_full_converge(host: Host) -> None:
    done = host.check("e" * 64)
    assert done.returncode == 1 and "the inputs changed" in done.stdout


def test_an_old_converge_means_a_full_converge(host: Host) -> None:
    two_hours_ago = time.time() - 7200
    os.utime(host.root / "state" / "fingerprint", (two_hours_ago, two_hours_ago))
    done = host.check(hours="1")
    assert done.returncode == 1 and "is 2 h old (converged_max_age_hours=1)" in done.stdout


def test_a_rewritten_file_is_drift_and_named(host: Host) -> None:
    (host.root / "etc" / "nginx" / "nginx.conf").write_text("worker_processes 1;\n")
    done = host.check()
    assert done.returncode == 1 and "drift in files" in done.stdout
    assert f"now: {host.root}/etc/nginx/nginx.conf f" in done.stdout, done.stdout


def test_a_new_key_under_a_glob_path_is_drift(host: Host) -> None:
    (host.root / "home" / "ops" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA\n")
    done = host.check()
    assert done.returncode == 1 and "authorized_keys" in done.stdout


def test_ignored_paths_and_directory_mtimes_are_not_drift(host: Host) -> None:
    (host.root / "etc" / "volatile" / "cache").write_text("changes on its own\n")
    (host.root / "etc" / "deploy.lock").write_text("came")
    (host.root / "etc" / "deploy.lock").unlink()  # the directory's mtime moved, its entries did not
    assert host.check().returncode == 0


def test_a_stopped_service_is_drift(host: Host) -> None:
    host.fake("services", "run-u9.service loaded active running another transient\n")
    done = host.check()
    assert done.returncode == 1 and "drift in units" in done.stdout and "was: running nginx.service" in done.stdout


def test_fail2ban_bans_are_not_drift_but_a_firewall_rule_is(host: Host) -> None:
    host.fake("ruleset", STATE["ruleset"].replace("addr-set-sshd {", "addr-set-sshd { elements = { 198.51.100.7 }"))
    assert host.check().returncode == 0
    host.fake("ruleset", STATE["ruleset"].replace("chain input {", "chain input {\n\t\ttcp dport 8080 accept"))
    done = host.check()
    assert done.returncode == 1 and "drift in firewall" in done.stdout and "8080" in done.stdout


def test_postgresql_drift_is_named_without_its_secrets(host: Host) -> None:
    host.fake("postgresql", "role app false true SCRAM-SHA-256$4096:salt$rotated-hash\n")
    done = host.check()
    assert done.returncode == 1 and "drift in postgresql" in done.stdout
    assert "hash" not in done.stdout + done.stderr


def test_a_new_package_version_is_drift(host: Host) -> None:
    host.fake("packages", "nginx 1.22.1 ii\n")
    done = host.check()
    assert done.returncode == 1 and "drift in packages" in done.stdout
