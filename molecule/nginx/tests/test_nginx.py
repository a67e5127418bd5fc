"""Live behaviour of prodready.webstack.nginx (pebble as the ACME CA inside each container), and
its refusal of bad input."""

from __future__ import annotations

import json
import re
import shlex
import socket
import time
from typing import Any

import pytest

from conftest import assert_readiness, assert_role_refuses, checked_once, container_ip, role_play, run_play, unit_journal

APP = "app.prodready.test"
WWW = "www.app.prodready.test"
ADMIN = "admin.prodready.test"
PEBBLE_API_CA = "/etc/pebble/api.crt"
PEBBLE_ROOT = "/root/pebble-root.pem"


def curl(host: Any, name: str, path: str = "/", scheme: str = "https", args: str = "") -> Any:
    """curl inside the container, with `name` pinned to loopback (SNI and Host set to it)."""
    port = 443 if scheme == "https" else 80
    return host.run(f"curl -sS --max-time 5 --resolve {name}:{port}:127.0.0.1 {args} '{scheme}://{name}{path}'")


def headers(host: Any, name: str, path: str = "/", args: str = "") -> dict[str, str]:
    out = curl(host, name, path, args=f"-k -o /dev/null -D - {args}")
    assert out.rc == 0, out.stderr
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in out.stdout.splitlines()[1:] if ":" in line)}


def handshake(host: Any, option: str, cipher: str = "DEFAULT@SECLEVEL=0") -> Any:
    # SECLEVEL=0 lets the client offer TLS 1.0/1.1: a failure is the server's refusal.
    return host.run(f"openssl s_client -connect 127.0.0.1:443 -servername {APP} {option} -cipher '{cipher}' </dev/null 2>&1")


@pytest.fixture()
def pebble_root(host: Any) -> str:
    """Pebble's issuing root (a new one per pebble start), from its management port."""
    out = host.run(f"curl -sS --cacert {PEBBLE_API_CA} -o {PEBBLE_ROOT} https://127.0.0.1:15000/roots/0")
    assert out.rc == 0, out.stderr
    return PEBBLE_ROOT


def nginx_pids(host: Any) -> tuple[str, set[str]]:
    master = host.file("/run/nginx.pid").content_string.strip()
    workers = set(host.run(f"pgrep -P {master}").stdout.split())
    return master, workers


def test_nginx_runs_with_a_valid_config(host: Any) -> None:
    assert host.service("nginx").is_running, unit_journal(host, "nginx")
    assert host.service("nginx").is_enabled
    test = host.run("nginx -t")
    assert test.rc == 0 and "warn" not in test.stderr, test.stderr
    assert sorted(host.file("/etc/nginx/sites-enabled").listdir()) == ["00-default.conf", "00-stub-status.conf",
                                                                        "admin.conf", "app.conf"]


def test_http_redirects_to_https_except_acme(host: Any) -> None:
    for name in (APP, WWW, ADMIN):
        out = curl(host, name, "/some/page?x=1", scheme="http", args="-o /dev/null -w '%{http_code} %{redirect_url}'")
        assert out.stdout == f"301 https://{name}/some/page?x=1", out.stdout
    token = "prodready-test-token"
    host.run(f"echo {token} > /var/www/letsencrypt/.well-known/acme-challenge/{token}")
    try:
        out = curl(host, APP, f"/.well-known/acme-challenge/{token}", scheme="http", args="-w ' %{http_code}'")
        assert out.stdout.split() == [token, "200"], out.stdout
    finally:
        host.run(f"rm -f /var/www/letsencrypt/.well-known/acme-challenge/{token}")


def test_proxies_to_the_upstream_over_http2(host: Any) -> None:
    out = curl(host, APP, "/", args="-k -w '\\n%{http_code} %{http_version}'")
    body, status = out.stdout.rsplit("\n", 1)
    assert status == "200 2" and "prodready upstream" in body, out.stdout + out.stderr


def test_internal_paths_are_not_served_to_the_internet(host: Any) -> None:
    """#19: the app's /metrics (nginx_internal_paths' default) answered through the public site's location /.
    nginx's own 404 page says nginx; the upstream (python http.server) answers every other path itself."""
    def answer(path: str) -> str:
        body, _, code = curl(host, APP, path, args="-k -w '\\n%{http_code}'").stdout.rpartition("\n")
        return f"{code} {'nginx' if '<center>nginx</center>' in body else 'upstream'}"

    answers = {path: answer(path) for path in ["/metrics", "/metrics/", "/metrics/x?y=1", "/metricsfoo", "/health/live", "/"]}
    assert answers == {"/metrics": "404 nginx", "/metrics/": "404 nginx", "/metrics/x?y=1": "404 nginx",
                       "/metricsfoo": "404 upstream", "/health/live": "404 upstream", "/": "200 upstream"}


def test_security_headers_everywhere(host: Any) -> None:
    expected = {
        "strict-transport-security": "max-age=63072000; includeSubDomains",
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
    }
    for path in ("/", "/static/app.css", "/missing-page"):
        got = headers(host, APP, path)
        assert {k: got.get(k) for k in expected} == expected, (path, got)
        assert got["content-security-policy"].startswith("default-src 'self'"), (path, got)
        assert "camera=()" in got["permissions-policy"]
        assert got["server"] == "nginx", got  # server_tokens off: no version
    admin = headers(host, ADMIN)
    assert admin["content-security-policy"] == "default-src 'none'; style-src 'self'; frame-ancestors 'none'"


def test_static_files_cached_and_gzipped(host: Any) -> None:
    got = headers(host, APP, "/static/app.css", args="-H 'Accept-Encoding: gzip'")
    assert got.get("content-encoding") == "gzip", got
    assert got.get("cache-control") == "public, max-age=2592000", got
    assert got.get("vary") == "Accept-Encoding", got


def test_old_tls_refused_new_tls_accepted(host: Any) -> None:
    for option in ("-tls1", "-tls1_1"):
        out = handshake(host, option)
        assert out.rc != 0, out.stdout
        assert "no protocols available" not in out.stdout, "the client did not offer the protocol"
    tls12 = handshake(host, "-tls1_2")
    assert tls12.rc == 0 and re.search(r"Cipher\s*(is|:)\s*ECDHE-ECDSA-AES\d+-GCM-SHA\d+", tls12.stdout), tls12.stdout
    tls13 = handshake(host, "-tls1_3")
    assert tls13.rc == 0 and "TLSv1.3" in tls13.stdout, tls13.stdout
    cbc = handshake(host, "-tls1_2", cipher="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0")
    assert cbc.rc != 0 and "Cipher is (NONE)" in cbc.stdout, "a CBC suite outside the Mozilla intermediate list was accepted"


def test_certificate_issued_by_pebble_and_trusted(host: Any, pebble_root: str) -> None:
    for name, cert_name in ((APP, "app"), (WWW, "app"), (ADMIN, "admin")):
        out = curl(host, name, "/", args=f"--cacert {pebble_root} -o /dev/null -w '%{{http_code}} %{{ssl_verify_result}}'")
        assert out.rc == 0 and out.stdout == "200 0", out.stdout + out.stderr
        issuer = host.run(f"openssl s_client -connect 127.0.0.1:443 -servername {name} </dev/null 2>/dev/null"
                          " | openssl x509 -noout -issuer")
        assert "Pebble Intermediate CA" in issuer.stdout, issuer.stdout
        link = host.check_output(f"readlink /etc/nginx/tls/{cert_name}/fullchain.pem")
        assert link == f"/etc/letsencrypt/live/{cert_name}/fullchain.pem", link
    for name in (APP, WWW):
        check = host.run(f"openssl x509 -in /etc/letsencrypt/live/app/cert.pem -noout -checkhost {name}")
        assert check.stdout.strip() == f"Hostname {name} does match certificate", check.stdout
    assert host.run(f"openssl x509 -in /etc/letsencrypt/live/app/cert.pem -noout -checkend {14 * 86400}").rc == 0
    renewal = host.file("/etc/letsencrypt/renewal/app.conf").content_string
    assert "authenticator = webroot" in renewal and "server = https://127.0.0.1:14000/dir" in renewal


def test_unknown_names_are_dropped(host: Any) -> None:
    plain = host.run("curl -sS --max-time 5 -H 'Host: evil.example' http://127.0.0.1/")
    assert plain.rc == 52, (plain.rc, plain.stderr)  # empty reply: 444
    tls = host.run("curl -sS -k --max-time 5 --resolve evil.example:443:127.0.0.1 https://evil.example/")
    assert tls.rc == 35, (tls.rc, tls.stderr)  # handshake rejected
    no_sni = host.run("openssl s_client -connect 127.0.0.1:443 -noservername </dev/null 2>&1")
    assert no_sni.rc != 0 and "unrecognized name" in no_sni.stdout, no_sni.stdout


def test_rate_limit_answers_429(host: Any) -> None:
    # The default register zone (5r/m, burst 5) on FastAPI's signup path under /api/v1/ (#16 item 9: the
    # old defaults matched /api/auth/register only): 6 requests pass at most, the rest are refused.
    out = host.run(f"for i in $(seq 15); do curl -sk -o /dev/null -w '%{{http_code}}\\n' --max-time 5 "
                   f"--resolve {APP}:443:127.0.0.1 https://{APP}/api/v1/users/signup; done")
    codes = out.stdout.split()
    passed = [c for c in codes if c != "429"]
    assert len(codes) == 15 and 1 <= len(passed) <= 6 and codes[len(passed):] == ["429"] * (15 - len(passed)), codes
    # Case-insensitive: the same endpoint in capitals counts against the same zone.
    assert curl(host, APP, "/API/V1/USERS/SIGNUP", args="-k -o /dev/null -w '%{http_code}'").stdout == "429"
    assert curl(host, APP, "/", args="-k -o /dev/null -w '%{http_code}'").stdout == "200"  # other paths unaffected
    matched = host.run("fail2ban-regex /var/log/nginx/error.log /etc/fail2ban/filter.d/nginx-limit-req.conf")
    assert re.search(r"Failregex: [1-9]\d* total", matched.stdout), matched.stdout


def test_json_access_log_has_timings(host: Any) -> None:
    marker = f"/json-log-probe-{int(time.time())}"
    curl(host, APP, marker, args="-k -o /dev/null")
    line = host.run(f"grep -F '{marker}' /var/log/nginx/access.log | tail -n 1").stdout
    entry = json.loads(line)
    assert entry["host"] == APP and entry["status"] == 404 and entry["uri"] == marker
    assert isinstance(entry["request_time"], float)
    assert re.fullmatch(r"\d+\.\d{3}", entry["upstream_response_time"]), entry
    assert entry["upstream_addr"] == "127.0.0.1:8000" and entry["tls"].startswith("TLSv1.")


def test_stub_status_on_loopback_only(host: Any) -> None:
    out = host.run("curl -sS --max-time 5 http://127.0.0.1:8080/stub_status")
    assert out.rc == 0 and out.stdout.startswith("Active connections:"), out.stdout
    listeners = host.check_output("ss -Htln")
    assert "127.0.0.1:8080" in listeners and "0.0.0.0:8080" not in listeners and "*:8080" not in listeners
    name = host.backend.hostname
    ip = container_ip(name)
    with pytest.raises(OSError):
        socket.create_connection((ip, 8080), timeout=3).close()


def test_fail2ban_jails_for_nginx(host: Any) -> None:
    assert host.service("fail2ban").is_running, unit_journal(host, "fail2ban")
    for jail in ("nginx-limit-req", "prodready-nginx-401"):
        status = host.run(f"fail2ban-client status {jail}")
        assert status.rc == 0 and "File list" in status.stdout, status.stdout + status.stderr
    # A real access-log line turned into a 401 from a documentation address.
    line = host.run("tail -n 1 /var/log/nginx/access.log").stdout.strip()
    sample = re.sub(r'"status":\d+', '"status":401', line.replace('"remote_addr":"127.0.0.1"', '"remote_addr":"203.0.113.7"'))
    host.run(f"cat > /tmp/prodready-401.log <<'EOF'\n{sample}\nEOF")
    matched = host.run("fail2ban-regex /tmp/prodready-401.log /etc/fail2ban/filter.d/prodready-nginx-401.conf")
    assert re.search(r"Lines: 1 lines, 0 ignored, 1 matched", matched.stdout), matched.stdout


def test_renewal_by_timer_reloads_nginx(host: Any) -> None:
    assert host.service("certbot.timer").is_running and host.service("certbot.timer").is_enabled
    assert "REQUESTS_CA_BUNDLE=/etc/pebble/api.crt" in host.check_output("systemctl show certbot.service -p Environment")
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/50-prodready-nginx-reload")
    assert hook.is_file and hook.mode == 0o755 and "systemctl reload nginx" in hook.content_string
    assert host.run("grep -rl prodready /etc/cron.d /etc/crontab /var/spool/cron 2>/dev/null").stdout == ""
    env = f"REQUESTS_CA_BUNDLE={PEBBLE_API_CA}"
    dry = host.run(f"{env} certbot renew --dry-run --cert-name admin --non-interactive --no-random-sleep-on-renew"
                   " --server https://127.0.0.1:14000/dir")
    assert dry.rc == 0, dry.stdout + dry.stderr

    serial = "openssl x509 -in /etc/letsencrypt/live/app/cert.pem -noout -serial"
    before_serial = host.check_output(serial)
    master, workers = nginx_pids(host)
    renew = host.run(f"{env} certbot renew --force-renewal --cert-name app --non-interactive --no-random-sleep-on-renew")
    assert renew.rc == 0, renew.stdout + renew.stderr
    assert host.check_output(serial) != before_serial
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and nginx_pids(host)[1] & workers:
        time.sleep(0.5)
    new_master, new_workers = nginx_pids(host)
    assert new_master == master, "nginx was restarted, not reloaded"
    assert new_workers and not new_workers & workers, "nginx was not reloaded"
    served = host.run("openssl s_client -connect 127.0.0.1:443 -servername app.prodready.test </dev/null 2>/dev/null"
                      " | openssl x509 -noout -serial")
    assert served.stdout.strip() == host.check_output(serial)
    assert "reloaded nginx for /etc/letsencrypt/live/app" in host.check_output("journalctl -t certbot-deploy-hook --no-pager")


def test_readiness_items_pass(host: Any, tmp_path: Any) -> None:
    name = host.backend.hostname
    report = tmp_path / "readiness.json"
    play = role_play("nginx", tasks_from="verify")
    play[0]["tasks"].append({"name": "Save the items", "delegate_to": "localhost", "become": False,
                             "ansible.builtin.copy": {"content": "{{ prodready_readiness | to_json }}", "dest": str(report),
                                                      "mode": "0600"}})
    result = run_play(play, limit=name)
    assert result.rc == 0, result.output[-3000:]
    items = json.loads(report.read_text())
    failed = [i for i in items if not i["passed"]]
    assert len(items) == 10 and not failed, failed or items
    assert {i["role"] for i in items} == {"nginx"}


def test_file_written_by_an_interrupted_run_is_reloaded(host: Any) -> None:
    """A run killed after writing a file but before the reload handler: the report names the file, and the
    next run reloads nginx (the file is unchanged, so no handler would): same master, new workers."""
    name = checked_once(host)
    master = host.check_output("cat /run/nginx.pid")
    workers = set(host.check_output(f"pgrep -P {master}").split())
    host.run("touch /etc/nginx/conf.d/prodready.conf")
    stale = assert_readiness(host, "nginx", ["prodready_readiness | rejectattr('passed') | list | length == 1"], show=True)
    assert "written after the last reload: /etc/nginx/conf.d/prodready.conf" in stale.output
    healed = run_play(role_play("nginx"), limit=name)
    assert healed.rc == 0 and "Written after the last reload" in healed.output, healed.output[-3000:]
    assert host.check_output("cat /run/nginx.pid") == master
    assert not workers & set(host.check_output(f"pgrep -P {master}").split()), "the workers were not replaced"
    assert_readiness(host, "nginx", ["prodready_readiness | rejectattr('passed') | list | length == 0"])


def test_a_config_nginx_rejects_never_goes_live(host: Any) -> None:
    """A value that passes preflight but breaks nginx -t: the file is not replaced, nginx keeps serving."""
    name = checked_once(host)
    live = "/etc/nginx/conf.d/prodready.conf"
    before = host.file(live).md5sum
    master, _ = nginx_pids(host)
    result = run_play(role_play("nginx"), limit=name, extra_vars={"nginx_ssl_ecdh_curve": "no-such-curve"})
    assert result.rc != 0 and "failed to validate" in result.output, result.output[-3000:]
    assert host.file(live).md5sum == before
    assert nginx_pids(host)[0] == master and host.run("nginx -t").rc == 0
    assert curl(host, APP, "/", args="-k -o /dev/null -w '%{http_code}'").stdout == "200"


def test_nginx_without_ssl_reject_handshake_names_no_site(host: Any) -> None:
    """nginx before 1.19.4 (Ubuntu 22.04's 1.18) has no ssl_reject_handshake: its default TLS server used to
    answer with the first site's certificate, which hands every site name to a scanner. The role runs here as
    it does for 1.18 (its version fact overridden), then again as for this host's own version."""
    name = checked_once(host)
    subject = ("openssl s_client -connect 127.0.0.1:443 -servername evil.example </dev/null 2>/dev/null"
               " | openssl x509 -noout -subject -ext subjectAltName")
    try:
        old = run_play(role_play("nginx"), limit=name, extra_vars={"__nginx_version": "1.18.0"})
        assert old.rc == 0, old.output[-3000:]
        default = host.file("/etc/nginx/sites-enabled/00-default.conf").content_string
        assert "ssl_reject_handshake on;" not in default and "/etc/nginx/tls/_default/selfsigned.crt;" in default, default
        cert = host.run(subject)
        assert re.search(r"CN ?= ?invalid", cert.stdout) and APP not in cert.stdout, cert.stdout  # OpenSSL 3.x spacing varies
        dropped = host.run("curl -sS -k --http1.1 --max-time 5 --resolve evil.example:443:127.0.0.1 https://evil.example/")
        # 444 after the handshake: the connection closes with no reply (curl: 52 empty reply, 56 EOF without
        # TLS close_notify, 92 HTTP/2 stream closed; which one depends on curl and OpenSSL).
        assert dropped.rc in (52, 56, 92) and dropped.stdout == "", (dropped.rc, dropped.stderr)
    finally:
        restored = run_play(role_play("nginx"), limit=name)
        assert restored.rc == 0, restored.output[-3000:]
    assert host.run("curl -sS -k --max-time 5 --resolve evil.example:443:127.0.0.1 https://evil.example/").rc == 35


BAD_INPUT = [
    pytest.param({"nginx_sites": []}, ["nginx_sites is empty"], id="no-sites"),
    pytest.param({"nginx_sites": [{"name": "app", "server_names": []}]},
                 ["nginx_sites[0].server_names (app)", "(empty list)"], id="empty-domain-list"),
    pytest.param({"nginx_sites": [{"name": "app", "server_names": ["app.example.com", "bad_name..example"]}]},
                 ["nginx_sites[0].server_names (app)", "bad_name..example"], id="invalid-domain"),
    pytest.param({"nginx_acme_email": ""}, ["nginx_acme_email must be an e-mail address"], id="missing-acme-email"),
    pytest.param({"nginx_sites": [{"name": "app", "server_names": ["app.example.com"], "upstream": ["localhost"]}]},
                 ["nginx_sites[0] (app): upstream", "localhost"], id="invalid-upstream"),
    pytest.param({"nginx_rate_limits": [{"name": "login", "pattern": "^/login", "rate": "10/minute"}]},
                 ["nginx_rate_limits[0] (login)", "10/minute"], id="malformed-rate"),
    pytest.param({"nginx_sites": [{"name": "app", "server_name": ["app.example.com"]}]},
                 ["server_names", "nginx_sites"], id="unknown-key"),
    pytest.param({"ansible_facts": {"distribution": "Fedora", "distribution_major_version": "40"}},
                 ["Unsupported platform Fedora-40"], id="distribution"),
    # #19: trusting every address lets a client spoof X-Forwarded-For; the old regex took 999.999.999.999/99.
    pytest.param({"nginx_real_ip_from": ["10.0.0.0/8", "0.0.0.0/0"]},
                 ["nginx_real_ip_from lists 0.0.0.0/0, which is the whole Internet", "X-Forwarded-For"], id="real-ip-world"),
    pytest.param({"nginx_internal_paths": ["/"]}, ["internal_paths (or nginx_internal_paths) paths like /metrics, not /",
                                                  "(got /)"], id="internal-root"),
    # Two locations for one prefix: nginx -t would refuse the file (duplicate location).
    pytest.param({"nginx_sites": [{"name": "app", "server_names": ["app.example.com"], "spa_root": "/srv/spa",
                                   "spa_proxy_paths": ["/assets/"]}]},
                 ["nginx_sites[0] (app)", "no prefix twice", "(got /assets/, /assets/"], id="spa-prefix-twice"),
    pytest.param({"nginx_real_ip_from": ["999.999.999.999/99"]},
                 ["nginx_real_ip_from must list IPv4/IPv6 addresses or CIDRs; not valid: 999.999.999.999/99"], id="real-ip-invalid"),
]


@pytest.mark.parametrize("bad_vars, needles", BAD_INPUT)
def test_bad_input_stops_before_any_change(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "nginx", bad_vars, needles)


# A WebSocket handshake and an echo through nginx (tests/fixtures/nginx/upstream.py echoes after a 101),
# idle for 3 s in between: longer than the app site's proxy_read_timeout (2s, molecule.yml).
WEBSOCKET_CLIENT = r"""
import socket, ssl, sys, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["http/1.1"])
conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=10), server_hostname="%(name)s")
conn.sendall(b"GET %(path)s HTTP/1.1\r\nHost: %(name)s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
head = b""
while b"\r\n\r\n" not in head:
    head += conn.recv(4096) or sys.exit("closed during the handshake: " + head.decode())
print(head.split(b"\r\n")[0].decode())
time.sleep(3)
try:
    conn.sendall(b"ping"); echo = conn.recv(4)
except OSError as exc:
    echo = repr(exc).encode()
print("echo:", echo.decode() or "closed")
"""


@pytest.mark.parametrize(("path", "echo"), [("/ws/echo", "echo: ping"), ("/chat", "echo: closed")])
def test_websocket_upgrades_pass_and_stay_open_under_websocket_paths(host: Any, path: str, echo: str) -> None:
    """#16 item 8: nginx sent "Connection: " to the app on every request, so no WebSocket handshake
    reached it. Upgrades now pass on every proxied path; under websocket_paths an idle connection stays
    open (websocket_timeout), elsewhere nginx closes it after proxy_read_timeout."""
    checked_once(host, "the nginx configuration is platform-independent")
    script = WEBSOCKET_CLIENT % {"name": APP, "path": path}
    out = host.run(f"python3 -c {shlex.quote(script)}")
    lines = out.stdout.splitlines()
    assert out.rc == 0 and lines[:1] == ["HTTP/1.1 101 Switching Protocols"], out.stdout + out.stderr
    assert lines[-1] == echo, out.stdout


@pytest.mark.parametrize(("path", "body", "cache"), [
    ("/", "prodready spa", "no-cache"),
    ("/orders/42/edit", "prodready spa", "no-cache"),                         # a client-side route
    ("/assets/app-5e1f.js", "live build", "public, max-age=31536000, immutable"),
    ("/assets/app-0a2b.js", "previous build", "public, max-age=31536000, immutable"),  # from spa_asset_roots
    ("/api/hello.txt", "prodready api", None),                                # spa_proxy_paths: the upstream's
])
def test_a_single_page_app_is_served_with_its_routes_assets_and_api(host: Any, path: str, body: str, cache: str | None) -> None:
    """#16 item 8: the admin site serves a built SPA from spa_root; deep links answer index.html (never cached),
    hashed assets are cached for a year and found in the previous build too, /api/ is proxied."""
    out = curl(host, ADMIN, path, args="-k -D -")
    assert out.rc == 0, out.stderr
    head, _, content = out.stdout.partition("\r\n\r\n")
    assert head.split()[1] == "200" and body in content, out.stdout
    got = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head.splitlines()[1:] if ":" in line)}
    if cache:
        assert got.get("cache-control") == cache, got
    assert got.get("content-security-policy") == "default-src 'none'; style-src 'self'; frame-ancestors 'none'", got


def test_a_missing_asset_is_a_404_not_the_index_and_not_cached(host: Any) -> None:
    out = curl(host, ADMIN, "/assets/app-gone.js", args="-k -o /dev/null -D - -w '%{http_code}'")
    assert out.stdout.endswith("404") and "immutable" not in out.stdout.lower(), out.stdout
