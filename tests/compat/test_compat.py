"""Each role's daemon-checkable templates, rendered per platform, checked by that platform's upstream validator.

Absolute paths of the live host (/etc/nginx, /var/log/nginx, host keys, ...) are mapped into the test's scratch
directory before a check; nothing else in a rendered file is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import DATA, PLATFORMS, Check, render, role_fact, role_value, shipped

MakeCheck = Callable[[str, str, str, str], Check]
PASSWORD = "Compat-check-password-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def relocate(text: str, tmp: Path, *prefixes: str) -> str:
    """Live absolute paths starting with one of PREFIXES moved under TMP."""
    for prefix in prefixes:
        text = text.replace(prefix, f"{tmp}{prefix}")
    return text


def self_signed(directory: Path, name: str = "compat.example.test") -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-subj", f"/CN={name}", "-days", "2", "-keyout", str(key), "-out", str(cert)],
                   capture_output=True, check=True, timeout=30)
    return cert, key


def run_for_a_while(argv: list[str], seconds: float = 3) -> tuple[subprocess.Popen[str], bool, str]:
    """Start a daemon, give it `seconds` to refuse its configuration, stop it: (process, still running, output)."""
    started = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and started.poll() is None:
        time.sleep(0.2)
    running = started.poll() is None
    started.terminate()
    try:
        log, _ = started.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        started.kill()
        log, _ = started.communicate()
    return started, running, log


def output(result: subprocess.CompletedProcess[str]) -> str:
    return (result.stdout + "\n" + result.stderr).strip()


# ---------------------------------------------------------------- redis
@pytest.mark.parametrize("platform", PLATFORMS)
def test_redis_conf(platform: str, check: MakeCheck) -> None:
    """redis.conf loaded the way roles/redis/tasks/configure.yml validates it (listeners off)."""
    c = check(platform, "redis/etc/redis/redis.conf", "redis", "redis-server")
    text = render(platform, "redis", "etc/redis/redis.conf.j2", redis_password=PASSWORD)
    (c.tmp / "var" / "lib" / "redis").mkdir(parents=True)
    conf = write(c.tmp / "redis.conf", relocate(text, c.tmp, "/var/lib/redis"))
    result = c.run(c.validator.suite.command("/usr/bin/redis-server", str(conf), "--port", "0", "--unixsocket", "", "--daemonize", "no",
                                             "--supervised", "no", "--logfile", "", "--pidfile", "", "--dir", str(c.tmp)), timeout=20)
    c.expect("Configured to not listen anywhere" in result.stdout + result.stderr, output(result))


# ---------------------------------------------------------------- nginx
NGINX_SITE = {"name": "app", "server_names": ["app.example.test", "www.app.example.test"],
              "static_path": "/srv/app/static", "media_path": "/srv/app/media"}
# A built single-page app in front of the API (#16 item 8): index, hashed assets over both slots, proxied paths.
NGINX_SPA_SITE = {"name": "spa", "server_names": ["spa.example.test"], "spa_root": "/srv/app/current/frontend/dist",
                  "spa_asset_roots": ["/srv/app/slots/blue/frontend/dist", "/srv/app/slots/green/frontend/dist"],
                  "spa_proxy_paths": ["/api/", "/health/"], "websocket_paths": ["/ws/"], "media_path": "/srv/app/media"}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_nginx_config(platform: str, check: MakeCheck) -> None:
    """nginx -t on the whole configuration the nginx role (and the app's metrics listener) writes."""
    c = check(platform, "nginx/etc/nginx/ (nginx.conf, conf.d, sites-enabled) + app conf.d/app-metrics.conf", "nginx", "nginx -t")
    suite = c.validator.suite
    etc = c.tmp / "etc" / "nginx"
    shutil.copytree(suite.path("/etc/nginx"), etc, symlinks=True)
    for stale in (etc / "sites-enabled").iterdir():  # the role keeps only its own sites
        stale.unlink()
    shipped_version = shipped(platform, "nginx")
    values = {"__nginx_version": shipped_version, "nginx_sites": [NGINX_SITE, NGINX_SPA_SITE], "nginx_acme_email": "ops@example.test"}
    files = {
        "nginx.conf": ("nginx", "etc/nginx/nginx.conf.j2"),
        "conf.d/prodready.conf": ("nginx", "etc/nginx/conf.d/prodready.conf.j2"),
        "sites-enabled/00-default.conf": ("nginx", "etc/nginx/sites-enabled/00-default.conf.j2"),
        "sites-enabled/00-stub-status.conf": ("nginx", "etc/nginx/sites-enabled/00-stub-status.conf.j2"),
        "sites-enabled/app.conf": ("nginx", "etc/nginx/sites-enabled/site.conf.j2"),
        "sites-enabled/spa.conf": ("nginx", "etc/nginx/sites-enabled/site.conf.j2"),
        "conf.d/app-metrics.conf": ("app", "etc/nginx/conf.d/app-metrics.conf.j2"),
    }
    sites = {"sites-enabled/spa.conf": role_value(platform, "nginx", "__nginx_sites[1]", **values)}
    site = role_value(platform, "nginx", "__nginx_sites[0]", **values)
    for dest, (role, template) in files.items():
        text = relocate(render(platform, role, template, site=sites.get(dest, site), **values),
                        c.tmp, "/etc/nginx/", "/var/log/nginx/", "/run/nginx.pid", "/srv/", "/var/www/")
        for included in re.findall(rf"include ({re.escape(str(c.tmp))}/\S+);", text):  # switchable upstream files
            write(Path(included), "server 127.0.0.1:8000;\n")
        write(etc / dest, text)
    # Not the role's: the compiled-in temp directories (/var/lib/nginx/*) moved into the scratch tree.
    write(etc / "conf.d" / "00-compat-scratch.conf", "".join(
        f"{kind}_temp_path {c.tmp}/var/lib/nginx/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")))
    (c.tmp / "var" / "lib" / "nginx").mkdir(parents=True)
    # Certificates the files name (the role's certbot/self-signed tasks make them on a host): one scratch pair for all.
    cert, key = self_signed(c.tmp / "scratch-tls")
    texts = "".join(p.read_text() for p in etc.rglob("*.conf") if p.is_file())
    for directive, source in (("ssl_certificate", cert), ("ssl_certificate_key", key)):
        for path in re.findall(rf"^\s*{directive}\s+(\S+);", texts, re.M):
            if not Path(path).exists():
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, path)
    (c.tmp / "var" / "log" / "nginx").mkdir(parents=True, exist_ok=True)
    (c.tmp / "run").mkdir(exist_ok=True)
    c.notes.append(f"rendered for nginx {shipped_version}")
    result = c.run(suite.command("/usr/sbin/nginx", "-t", "-p", str(c.tmp), "-c", str(etc / "nginx.conf")))
    c.notes += [line.split("[warn] ", 1)[1] for line in output(result).splitlines() if "[warn] " in line]
    c.expect(result.returncode == 0, output(result))


# ---------------------------------------------------------------- alertmanager
ALL_CHANNELS = {
    "monitoring_alertmanager_email_to": ["ops@example.test"], "monitoring_alertmanager_email_from": "alerts@example.test",
    "monitoring_alertmanager_smtp_smarthost": "smtp.example.test:587", "monitoring_alertmanager_smtp_username": "alerts",
    "monitoring_alertmanager_smtp_password": PASSWORD, "monitoring_alertmanager_webhook_urls": ["https://hooks.example.test/alerts"],
    "monitoring_alertmanager_telegram_bot_token": "123456:compat-token", "monitoring_alertmanager_telegram_chat_id": -100123,
    "monitoring_alertmanager_slack_api_url": "https://slack.example.test/hook", "monitoring_alertmanager_slack_channel": "#ops",
}


@pytest.mark.parametrize("variant", ["defaults", "all channels (e-mail, webhook, Telegram, Slack)"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_alertmanager_config(platform: str, variant: str, check: MakeCheck) -> None:
    c = check(platform, f"monitoring/etc/prometheus/alertmanager.yml [{variant}]", "alertmanager", "amtool check-config")
    values = ALL_CHANNELS if variant != "defaults" else {}
    text = render(platform, "monitoring", "etc/prometheus/alertmanager.yml.j2", **values)
    if values and "telegram_configs" not in text:
        c.notes.append("Telegram left out by the template on this platform")
    conf = write(c.tmp / "alertmanager.yml", text)
    result = yaml_check(c, platform, "alertmanager", conf, text, c.validator.suite.command("/usr/bin/amtool", "check-config", str(conf)))
    c.expect(result.returncode == 0, output(result))


def yaml_check(c: Check, platform: str, component: str, conf: Path, text: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """ARGV on the YAML file CONF; when the only refusals are unknown fields platforms.yml lists as gaps of this older
    validator, the same file without exactly those keys is checked instead (and the table says so)."""
    result = c.run(argv)
    unknown = set(re.findall(r"field (\w+) not found", output(result)))
    gaps = gap_keys(platform, component)
    if result.returncode != 0 and unknown and unknown <= set(gaps):
        write(conf, yaml.safe_dump(without_keys(yaml.safe_load(text), unknown)))
        result = c.run(argv)
        c.notes.append(f"{', '.join(sorted(unknown))} removed for this older validator ({'; '.join(sorted({gaps[k] for k in unknown}))})")
    return result


def gap_keys(platform: str, component: str) -> dict[str, str]:
    return dict(DATA["platforms"][platform].get("gaps", {}).get(component, {}))


def without_keys(value: Any, keys: set[str]) -> Any:
    if isinstance(value, dict):
        return {k: without_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without_keys(v, keys) for v in value]
    return value


# ---------------------------------------------------------------- node-exporter
WEB_USERS = {"prometheus": "$2y$10$yTTTHQ8Uq0Im4U0Wq0rFPe/WJm9SbNn.yzZB0kEvT4NwOq6VDMXGS"}


@pytest.mark.parametrize("platform", PLATFORMS)
def test_node_exporter_args(platform: str, check: MakeCheck) -> None:
    """The ARGS the exporters role writes, with TLS and basic auth on: the exporter must start with them and be
    served through the web configuration when it takes one (the flag comes from the role's own --help probe)."""
    c = check(platform, "exporters/etc/default/prometheus-node-exporter [web config on]", "node-exporter", "prometheus-node-exporter")
    binary = c.validator.suite.command("/usr/bin/prometheus-node-exporter")
    helped = c.run([*binary, "--help"], timeout=20)
    help_text = output(helped)
    offered = sorted(set(re.findall(r"--(web\.config(?:\.file)?)[= ]", help_text)))
    cert, key = self_signed(c.tmp / "tls")
    values = {"exporters_web_config_enabled": True, "exporters_web_tls_cert_file": str(cert), "exporters_web_tls_key_file": str(key),
              "exporters_web_basic_auth_users": WEB_USERS}
    item = {"key": "node", "value": {"package": "prometheus-node-exporter", "port": 9100, "enabled": True}}
    probe = {"__exporters_help": {"results": [{"item": item, "stdout": helped.stdout, "stderr": helped.stderr, "rc": helped.returncode}]}}
    fact = "__exporters_web_config_flags" if "__exporters_web_config_flags" in role_text("exporters", "tasks/install.yml") \
        else "__exporters_web_config_keys"
    values[fact] = role_fact(platform, "exporters", "install.yml", fact, **values, **probe)
    text = render(platform, "exporters", "etc/default/prometheus-node-exporter.j2", **values)
    web = render(platform, "exporters", "etc/prometheus/exporters-web.yml.j2", **values)
    write(c.tmp / "etc" / "prometheus" / "exporters-web.yml", web)
    args_line = re.search(r"^ARGS='(.*)'$", text, re.M)
    assert args_line, text
    port = free_port()
    args = [re.sub(r"^--web\.listen-address=.*", f"--web.listen-address=127.0.0.1:{port}", a) for a in args_line.group(1).split()]
    args = [relocate(a, c.tmp, "/etc/prometheus/", "/var/lib/prometheus/") for a in args]
    (c.tmp / "var" / "lib" / "prometheus" / "node-exporter").mkdir(parents=True)
    given = [a.split("=", 1)[0].lstrip("-") for a in args if a.startswith("--web.config")]
    if offered and not given:
        c.expect(False, f"the exporter takes --{' / --'.join(offered)} but ARGS give no web configuration (TLS and basic auth "
                        f"would be off): ARGS='{args_line.group(1)}'")
    c.notes.append(f"ARGS use --{given[0]}" if given else "no web configuration flag offered")
    started, running, log = run_for_a_while([*binary, *args])
    c.expect(running, f"exited {started.returncode} within 3 s: {log.strip()[-700:]}")


def role_text(role: str, path: str) -> str:
    from conftest import ROLES_DIR
    return (ROLES_DIR / role / path).read_text()


# ---------------------------------------------------------------- sshd
@pytest.mark.parametrize("platform", PLATFORMS)
def test_sshd_config(platform: str, check: MakeCheck) -> None:
    """sshd -t -f on the hardening role's sshd_config, with scratch host keys of the configured types."""
    c = check(platform, "hardening/etc/ssh/sshd_config", "openssh", "sshd -t")
    suite = c.validator.suite
    text = render(platform, "hardening", "etc/ssh/sshd_config.j2", hardening_ssh_allow_users=["deploy"])
    for key_type in sorted(set(re.findall(r"^HostKey /etc/ssh/ssh_host_(\w+)_key$", text, re.M))):
        key = c.tmp / "etc" / "ssh" / f"ssh_host_{key_type}_key"
        key.parent.mkdir(parents=True, exist_ok=True)
        made = c.run(suite.command("/usr/bin/ssh-keygen", "-q", "-t", key_type, "-N", "", "-f", str(key)), timeout=60)
        assert made.returncode == 0, output(made)
    conf = write(c.tmp / "etc" / "ssh" / "sshd_config", relocate(text, c.tmp, "/etc/ssh/"))
    sshd = suite.command("/usr/sbin/sshd", "-t", "-f", str(conf))
    # sshd wants its privilege separation user and directory, which this machine need not have: a private mount
    # namespace gives it a passwd with "sshd" and an empty /run/sshd.
    passwd = write(c.tmp / "passwd", Path("/etc/passwd").read_text() + "sshd:x:64999:65534::/run/sshd:/usr/sbin/nologin\n")
    (c.tmp / "run-sshd").mkdir()
    script = ('mount --bind "$1" /etc/passwd && mkdir -p /run/sshd 2>/dev/null; mount --bind "$2" /run/sshd 2>/dev/null || true; '
              'shift 2; exec "$@"')
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sshd-check", str(passwd), str(c.tmp / "run-sshd"), *sshd]
    result = c.run(argv)
    gaps = {token: why for token, why in gap_keys(platform, "openssh").items() if token in output(result)}
    if result.returncode != 0 and gaps:
        # Algorithms the platform's OpenSSH has and the older validator lacks: check the rest without them.
        for token in gaps:
            text = re.sub(rf"(?<=[ ,]){re.escape(token)},|,{re.escape(token)}(?=\s)", "", text)
        write(conf, relocate(text, c.tmp, "/etc/ssh/"))
        result = c.run(argv)
        c.notes.append(f"{', '.join(gaps)} removed for this older validator ({'; '.join(sorted(set(gaps.values())))})")
    c.expect(result.returncode == 0, output(result) or f"exit {result.returncode}")


# ---------------------------------------------------------------- fail2ban
@pytest.mark.parametrize("platform", PLATFORMS)
def test_fail2ban_config(platform: str, check: MakeCheck) -> None:
    """fail2ban-client -t on the package's configuration plus the hardening jail.local and the nginx role's jails."""
    c = check(platform, "hardening/etc/fail2ban/jail.local + nginx jail.d, filter.d", "fail2ban", "fail2ban-client -t")
    suite = c.validator.suite
    conf = c.tmp / "etc" / "fail2ban"
    shutil.copytree(suite.path("/etc/fail2ban"), conf, symlinks=True)
    write(conf / "jail.local", render(platform, "hardening", "etc/fail2ban/jail.local.j2"))
    for template in ("etc/fail2ban/jail.d/prodready-nginx.local.j2", "etc/fail2ban/filter.d/prodready-nginx-401.conf.j2"):
        dest = conf / template.removeprefix("etc/fail2ban/").removesuffix(".j2")
        write(dest, relocate(render(platform, "nginx", template), c.tmp, "/var/log/nginx/"))
    for log in ("error.log", "access.log"):
        write(c.tmp / "var" / "log" / "nginx" / log, "")
    python = next(p for p in sorted(suite.path("/usr/bin").glob("python3.*")) if re.fullmatch(r"python3\.[0-9]+", p.name))
    env = {"PATH": "/usr/bin:/bin", "PYTHONHOME": str(suite.path("/usr")), "PYTHONPATH": str(suite.path("/usr/lib/python3/dist-packages")),
           "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
    result = c.run(suite.command(f"/usr/bin/{python.name}", "-s", str(suite.path("/usr/bin/fail2ban-client")), "-c", str(conf), "-t"),
                   env=env)
    c.notes.append(f"with {python.name}")
    c.expect(result.returncode == 0 and "OK" in output(result), output(result))


# ---------------------------------------------------------------- prometheus
@pytest.mark.parametrize("platform", PLATFORMS)
def test_prometheus_config(platform: str, check: MakeCheck) -> None:
    """promtool check config on prometheus.yml (inventory: web1, db1, mon1), with the rendered rules in rule_files."""
    c = check(platform, "monitoring/etc/prometheus/prometheus.yml (+ rules/)", "prometheus", "promtool check config")
    write(c.tmp / "etc" / "prometheus" / "rules" / "prodready.rules.yml",
          render(platform, "monitoring", "etc/prometheus/rules/prodready.rules.yml.j2"))
    text = render(platform, "monitoring", "etc/prometheus/prometheus.yml.j2", nginx_sites=[NGINX_SITE])
    conf = write(c.tmp / "etc" / "prometheus" / "prometheus.yml", relocate(text, c.tmp, "/etc/prometheus/"))
    result = c.run(c.validator.suite.command("/usr/bin/promtool", "check", "config", str(conf)))
    c.expect(result.returncode == 0, output(result))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_prometheus_rules(platform: str, check: MakeCheck) -> None:
    c = check(platform, "monitoring/etc/prometheus/rules/prodready.rules.yml", "prometheus", "promtool check rules")
    rules = write(c.tmp / "prodready.rules.yml", render(platform, "monitoring", "etc/prometheus/rules/prodready.rules.yml.j2"))
    result = c.run(c.validator.suite.command("/usr/bin/promtool", "check", "rules", str(rules)))
    c.expect(result.returncode == 0, output(result))


# ---------------------------------------------------------------- nftables
@pytest.mark.parametrize("platform", PLATFORMS)
def test_nftables_conf(platform: str, check: MakeCheck) -> None:
    """nft -c -f on the hardening role's ruleset (the check runs against this machine's kernel)."""
    c = check(platform, "hardening/etc/nftables.conf", "nftables", "nft -c -f")
    conf = write(c.tmp / "nftables.conf", render(platform, "hardening", "etc/nftables.conf.j2"))
    result = c.run(c.validator.suite.command("/usr/sbin/nft", "-c", "-f", str(conf)))
    c.notes.append(f"kernel {os.uname().release}")
    c.expect(result.returncode == 0, output(result) or f"exit {result.returncode}")


# ---------------------------------------------------------------- postgresql
def unprivileged_copy(c: Check, base: Path, *relative: str) -> Path:
    """The suite's files RELATIVE copied (hard links where possible) under BASE, readable by an unprivileged user."""
    root = base / "root"
    for rel in relative:
        source = c.validator.suite.path(rel)
        if not source.exists():
            continue
        target = root / rel.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy, dirs_exist_ok=True)
        else:
            _link_or_copy(str(source), str(target))
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return root


def _link_or_copy(source: str, target: str) -> str:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


@pytest.mark.parametrize("platform", PLATFORMS)
def test_postgresql_conf_d(platform: str, check: MakeCheck, request: pytest.FixtureRequest) -> None:
    """postgres -C on a data directory whose postgresql.conf includes the role's conf.d drop-in, run as nobody."""
    c = check(platform, "postgresql/etc/postgresql/conf.d/90-prodready.conf", "postgresql", "postgres -C")
    major = c.validator.version.split(".")[0]
    text = render(platform, "postgresql", "etc/postgresql/conf.d/90-prodready.conf.j2", postgresql_app_password=PASSWORD)
    base = Path(tempfile.mkdtemp(prefix="prodready-compat-pg-"))  # pytest's tmp_path is private to root
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    data = base / "data"
    write(data / "conf.d" / "90-prodready.conf", text)
    write(data / "postgresql.conf", "include_dir = 'conf.d'\n")
    root = unprivileged_copy(c, base, "/lib", "/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", f"/usr/lib/postgresql/{major}",
                             f"/usr/share/postgresql/{major}")
    names = re.findall(r"^(\w[\w.]*) = ", text, re.M)
    scratch_suite = type(c.validator.suite)(c.validator.suite.name)
    postgres = scratch_suite.command(f"/usr/lib/postgresql/{major}/bin/postgres", "-C", names[0] if names else "shared_buffers",
                                     "-D", str(data))
    argv = [a.replace(str(scratch_suite.root), str(root)) for a in postgres]
    result = c.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv])
    c.notes.append(f"{len(names)} settings")
    c.expect(result.returncode == 0, output(result) or f"exit {result.returncode}")


# ---------------------------------------------------------------- pgbouncer
SCRAM = ("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$5G5pEqgmKxGyKq5l9u3xM1Kb9cGQGJwXxvZx0J1u0nM="
         ":8Fo7G5G3Yx0bFhOKrT2cZx4Xk0sO4bWQm2t8E2y1n9c=")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_pgbouncer_ini(platform: str, check: MakeCheck, request: pytest.FixtureRequest) -> None:
    """PgBouncer (no config-test mode) started as nobody on the role's four files for 3 s on a loopback port."""
    c = check(platform, "postgresql/etc/pgbouncer/ (pgbouncer.ini, listen.ini, pg_hba.conf, userlist.txt)", "pgbouncer", "pgbouncer")
    base = Path(tempfile.mkdtemp(prefix="prodready-compat-pgb-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    values = {"postgresql_pgbouncer_enabled": True, "postgresql_listen_addresses": ["127.0.0.1"],
              "postgresql_users": [{"name": "app", "password": PASSWORD}], "postgresql_databases": [{"name": "app", "owner": "app"}],
              "__postgresql_scram": {"query_result": [{"rolname": "app", "rolpassword": SCRAM}]}}
    port = free_port()
    for name in ("pgbouncer.ini", "listen.ini", "pg_hba.conf", "userlist.txt"):
        text = relocate(render(platform, "postgresql", f"etc/pgbouncer/{name}.j2", **values), base,
                        "/etc/pgbouncer/", "/var/log/postgresql/", "/var/run/postgresql")
        if name == "listen.ini":
            text = re.sub(r"^listen_port = .*$", f"listen_port = {port}", text, flags=re.M)
        write(base / "etc" / "pgbouncer" / name, text)
    for directory in ("var/log/postgresql", "var/run/postgresql"):
        (base / directory).mkdir(parents=True)
    root = unprivileged_copy(c, base, "/lib", "/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/sbin/pgbouncer")
    for path in [base, *base.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o777 if "var" in path.parts else 0o755)
    argv = [a.replace(str(c.validator.suite.root), str(root)) for a in
            c.validator.suite.command("/usr/sbin/pgbouncer", str(base / "etc" / "pgbouncer" / "pgbouncer.ini"))]
    started, running, log = run_for_a_while(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv])
    logfile = base / "var" / "log" / "postgresql" / "pgbouncer.log"
    log += logfile.read_text() if logfile.exists() else ""
    warnings = [line.split("WARNING ", 1)[1] for line in log.splitlines() if "WARNING " in line]
    c.notes += warnings[:3]
    c.expect(running and "process up" in log, f"exited {started.returncode} within 3 s: {log.strip()[-700:]}" if not running
             else f"no 'process up' in its log: {log.strip()[-700:]}")


# ---------------------------------------------------------------- blackbox exporter, sudoers
@pytest.mark.parametrize("platform", PLATFORMS)
def test_blackbox_config(platform: str, check: MakeCheck) -> None:
    """The monitoring role's own validate: prometheus-blackbox-exporter --config.check."""
    c = check(platform, "monitoring/etc/prometheus/blackbox.yml", "blackbox-exporter", "prometheus-blackbox-exporter --config.check")
    conf = write(c.tmp / "blackbox.yml", render(platform, "monitoring", "etc/prometheus/blackbox.yml.j2"))
    text = conf.read_text()
    argv = c.validator.suite.command("/usr/bin/prometheus-blackbox-exporter", "--config.check", f"--config.file={conf}")
    result = yaml_check(c, platform, "blackbox-exporter", conf, text, argv)
    c.expect(result.returncode == 0, output(result))


@pytest.mark.parametrize("platform", PLATFORMS)
def test_sudoers(platform: str, check: MakeCheck) -> None:
    """The base role's own validate: visudo -cf (two admin accounts)."""
    c = check(platform, "base/etc/sudoers.d/90-prodready-admins", "sudo", "visudo -cf")
    admins = [{"name": "alice", "ssh_keys": ["ssh-ed25519 AAAA alice"]}, {"name": "bob", "ssh_keys": ["ssh-ed25519 AAAA bob"]}]
    conf = write(c.tmp / "90-prodready-admins", render(platform, "base", "etc/sudoers.d/90-prodready-admins.j2", base_admin_users=admins))
    result = c.run(c.validator.suite.command("/usr/sbin/visudo", "-cf", str(conf), extra_libs=["/usr/libexec/sudo", "/usr/lib/sudo"]))
    c.expect(result.returncode == 0, output(result))
