"""sshd socket-activated as on Ubuntu 24.04 (ssh.socket owns the port), moved to port 2222 by
prodready.webstack.hardening: the real listeners follow hardening_ssh_port, logins work there,
and the play's own SSH connection survives the hand-over."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from conftest import assert_readiness, container_ip, role_play, run_play, unit_journal

KEY = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "ssh" / "id_ed25519"
SSH = ("ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
       "-o LogLevel=ERROR -o ConnectTimeout=5")
PORT = 2222
ITEM = "SSH listens on the configured port only"


def _tcp_listeners(host: Any) -> dict[int, str]:
    """Listening TCP ports -> the processes holding them (`ss -Hltnp`)."""
    listeners: dict[int, str] = {}
    for line in host.check_output("ss -Hltnp").splitlines():
        fields = line.split()
        port = int(fields[3].rsplit(":", 1)[1])
        listeners[port] = listeners.get(port, "") + " ".join(fields[5:])
    return listeners


def _private_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    key.write_text(KEY.read_text())
    key.chmod(0o600)
    return key


def test_sshd_listens_on_the_new_port_only(host: Any) -> None:
    listeners = _tcp_listeners(host)
    assert PORT in listeners, (listeners, unit_journal(host, "ssh"), unit_journal(host, "ssh.socket"))
    assert '"sshd"' in listeners[PORT] or '"systemd"' in listeners[PORT], listeners
    assert 22 not in listeners, f"port 22 still open: {listeners}"
    assert host.check_output("sshd -T | grep '^port '") == f"port {PORT}"


def test_key_login_on_the_new_port(host: Any, tmp_path: Path) -> None:
    """From the Docker host through the firewall, and on loopback inside the container."""
    key = _private_key(tmp_path)
    ip = container_ip(host.backend.hostname)
    login = subprocess.run([*SSH.split(), "-i", str(key), "-p", str(PORT), f"deploy@{ip}", "id -un"],
                           capture_output=True, text=True, timeout=30, check=False)
    assert login.returncode == 0 and login.stdout.strip() == "deploy", login.stderr
    inside = "/root/.prodready-test-key"
    host.run(f"install -m 600 /dev/null {inside} && cat > {inside} <<'EOF'\n{KEY.read_text()}EOF")
    loopback = host.run(f"{SSH} -i {inside} -p {PORT} deploy@127.0.0.1 id -un")
    assert loopback.rc == 0 and loopback.stdout.strip() == "deploy", loopback.stderr
    refused = host.run(f"{SSH} -i {inside} -p 22 deploy@127.0.0.1 true")
    assert refused.rc == 255 and "refused" in refused.stderr, refused.stderr


def test_readiness_measures_the_live_listeners(host: Any) -> None:
    result = assert_readiness(host, "hardening", [
        f"prodready_readiness | selectattr('item', 'equalto', '{ITEM}') | map(attribute='passed') | list == [true]",
        "prodready_readiness | rejectattr('passed') | list | length == 0",
    ], show=True)
    assert re.search(rf"{PORT}.*sshd", result.output), result.output[-3000:]


def test_handover_from_the_socket_keeps_the_plays_own_ssh_connection(host: Any, tmp_path: Path) -> None:
    """Back to socket activation (ssh.socket on 2222, as Ubuntu's generator writes it), then the
    role's SSH tasks over a real SSH connection to that socket: the hand-over to ssh.service runs
    inside the play, and the play's next task still runs over the same connection."""
    name = host.backend.hostname
    dropin = "/etc/systemd/system/ssh.socket.d/prodready-test.conf"
    host.run(f"install -d /etc/systemd/system/ssh.socket.d && printf '[Socket]\\nListenStream=\\nListenStream={PORT}\\n' > {dropin}"
             " && systemctl daemon-reload && systemctl stop ssh.service && systemctl disable ssh.service"
             " && systemctl enable --now ssh.socket")
    try:
        assert '"systemd"' in _tcp_listeners(host)[PORT] and host.service("ssh.socket").is_running
        play = role_play("hardening", tasks_from="ssh")
        play[0]["tasks"].append({"name": "Still connected after the hand-over",
                                 "ansible.builtin.command": "ss -Hltnp", "changed_when": False,
                                 "register": "after"})
        play[0]["tasks"].append({"name": "Show the listeners", "ansible.builtin.debug": {"var": "after.stdout_lines"}})
        result = run_play(play, limit=name, extra_vars={
            "ansible_connection": "ssh", "ansible_host": container_ip(name), "ansible_port": PORT,
            "ansible_user": "deploy", "ansible_ssh_private_key_file": str(_private_key(tmp_path)),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"})
        assert result.rc == 0 and result.recap(name).get("unreachable") == 0, result.output[-4000:]
        assert "Still connected after the hand-over" in result.output
        listeners = _tcp_listeners(host)
        assert '"sshd"' in listeners[PORT] and '"systemd"' not in listeners[PORT], listeners
        assert not host.service("ssh.socket").is_enabled and host.service("ssh").is_enabled
    finally:
        host.run(f"rm -f {dropin} && systemctl daemon-reload")
