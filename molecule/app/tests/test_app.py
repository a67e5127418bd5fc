"""Live checks of prodready.webstack.app: the sample app serves through nginx over TLS, its
migration ran, Celery round-trips through Redis, beat runs on one host, the units are
sandboxed, and deploys switch with zero failed requests, refuse unready releases and failed
migrations, and roll back."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import (
    PROJECT,
    PlayResult,
    all_items_pass,
    assert_readiness,
    assert_role_refuses,
    checked_once,
    first_run_host,
    run_play,
    unit_journal,
)

DEPLOY = PROJECT / "playbooks" / "deploy.yml"
ROLLBACK = PROJECT / "playbooks" / "rollback.yml"
SITE = "https://app.test"
# URLs valid enough for the input checks that do not test them.
GOOD_URLS = {"app_database_url": "postgresql://app:x@127.0.0.1:5432/app", "app_redis_url": "redis://:x@127.0.0.1:6379/0",
             "app_python": "/usr/bin/python3"}


def name(host: Any) -> str:
    return host.backend.hostname


def deploy_host(host: Any) -> None:
    """Deploy sequences change the serving release: they run on one host."""
    checked_once(host, "deploy sequences run on one host")


def get(host: Any, path: str, method: str = "GET", json_body: str = "") -> tuple[int, str]:
    """Status and body of a request through nginx (TLS, the self-signed bootstrap certificate)."""
    data = f"-H 'Content-Type: application/json' -d '{json_body}'" if json_body else ""
    out = host.run(f"curl -sk -X {method} {data} -o /tmp/body -w '%{{http_code}}' --max-time 20 '{SITE}{path}'; echo; cat /tmp/body")
    status, _, body = out.stdout.partition("\n")
    return int(status or 0), body


def version(host: Any) -> str:
    status, body = get(host, "/version")
    assert status == 200, body
    return json.loads(body)["version"]


def deploy(host: Any, app_version: str, **extra: Any) -> PlayResult:
    return run_play(DEPLOY, limit=name(host), extra_vars={"app_version": app_version, **extra})


def test_release_ready_over_tls(host: Any) -> None:
    status, body = get(host, "/health/ready")
    assert status == 200, f"{body}\n{unit_journal(host, 'app-web@blue')}"
    assert json.loads(body)["status"] == "ok"


def test_probes_pass_the_apps_host_and_https_checks(host: Any) -> None:
    """The sample app runs with ALLOWED_HOSTS=app.test and SECURE_SSL_REDIRECT (molecule.yml): the probe
    the role used to send (Host 127.0.0.1:<port>, no X-Forwarded-Proto) is refused, so the release
    became ready only because the role now probes with the site's Host and X-Forwarded-Proto: https."""
    slot = host.file("/srv/app/state/active-slot").content_string.strip()
    port = {"blue": 8001, "green": 8002}[slot]
    url = f"http://127.0.0.1:{port}/health/ready"

    def probe(*headers: str) -> list[str]:
        """[status] or [status, Location]."""
        args = " ".join(f"-H '{h}'" for h in headers)
        return host.check_output(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --max-time 5 {args} {url}").split()

    assert probe() == ["400"], "the app does not check ALLOWED_HOSTS"
    assert probe("Host: app.test") == ["301", "https://app.test/health/ready"], "the app does not redirect plain HTTP"
    assert probe("Host: app.test", "X-Forwarded-Proto: https") == ["200"], unit_journal(host, f"app-web@{slot}")
    assert host.check_output("/usr/local/sbin/app-switch status").split()[2] == "active"


def test_readiness_report_probes_as_nginx_forwards_and_says_what_was_checked(host: Any) -> None:
    """tasks/verify.yml asks with the site's Host and X-Forwarded-Proto too (a 400 before), and its
    detail lists the checks the endpoint reported instead of assuming "(database, Redis)"."""
    result = assert_readiness(host, "app", all_items_pass(7), show=True)
    assert "/health/ready -> 200; checks reported: database ok, migrations ok (0002), redis ok" in result.output, result.output[-3000:]
    assert "App readiness check answers 200 (database, Redis)" not in result.output  # the title assumed them


def test_units_order_after_the_local_services_only(host: Any) -> None:
    """This host runs PostgreSQL and Redis but no PgBouncer: the units order after what it has."""
    unit = host.file("/etc/systemd/system/app-web@.service").content_string
    after = next(line for line in unit.splitlines() if line.startswith("After="))
    expected = ["network-online.target", "postgresql.service"]
    if host.file("/lib/systemd/system/pgbouncer.service").exists or host.file("/etc/systemd/system/pgbouncer.service").exists:
        expected.append("pgbouncer.service")
    assert after.split("=", 1)[1].split() == [*expected, "redis-server.service"], after
    assert "Wants=network-online.target" in unit and "Requires=" not in unit


def test_interpreter_per_strategy(host: Any) -> None:
    expected = "3.12" if name(host).endswith("debian12") else "3.13"
    out = host.check_output("/srv/app/current/.venv/bin/python -c 'import sys; print(sys.version)'")
    assert out.startswith(expected), out
    if expected == "3.12":  # standalone archive unpacked under /opt/python
        assert "/opt/python/" in host.file("/srv/app/current/.venv/pyvenv.cfg").content_string


def test_the_lock_file_installs_the_project_into_its_venv(host: Any) -> None:
    """app_install_mode auto with uv.lock: `uv sync --frozen`, the project itself installed (not editable),
    so its package imports from the venv wherever the command runs; no pip in a uv-made venv."""
    marker = host.file("/srv/app/releases/1.0.0/.prodready-release").content_string
    assert "install=installed after downloading (uv, uv_lock)" in marker or "install=installed offline (uv, uv_lock)" in marker, marker
    out = host.check_output("cd / && /srv/app/current/.venv/bin/python -c "
                            "'import app, importlib.metadata as m; print(app.__file__, m.version(\"sampleapp\"))'")
    assert "/.venv/lib/python3." in out and "/site-packages/app/__init__.py" in out and out.endswith(" 1.0.0"), out
    assert host.file("/opt/prodready/uv/0.13.9/bin/uv").is_file


def test_the_releases_venv_is_byte_compiled(host: Any) -> None:
    """The release is read-only at run time: a module without its .pyc is compiled again by every process
    start (uv installed without bytecode: the first deploy's five workers took 70 s to import the app).
    Asked with -B, so the check itself writes nothing."""
    script = ("import importlib.util as u, pathlib; "
              "print(*[m for m in ('fastapi', 'pydantic', 'sqlalchemy', 'celery', 'app') "
              "if not pathlib.Path(u.cache_from_source(u.find_spec(m).origin)).is_file()])")
    missing = host.check_output(f"cd / && /srv/app/current/.venv/bin/python -B -c \"{script}\"")
    assert missing == "", f"no bytecode for: {missing}"


def test_migration_created_the_table(host: Any) -> None:
    query = "select to_regclass('public.items'), version_num from alembic_version"
    out = host.check_output(f"runuser -u postgres -- psql -d app -Atc \"{query}\"")
    assert out.startswith("items|"), out


def test_items_written_and_read_back(host: Any) -> None:
    status, body = get(host, "/items", method="POST", json_body='{"name": "molecule"}')
    assert status in (200, 201), body
    status, body = get(host, "/items")
    assert status == 200 and "molecule" in body, body


def test_celery_task_round_trips_through_redis(host: Any) -> None:
    status, body = get(host, "/tasks/add?x=2&y=40", method="POST")
    assert status == 200, f"{body}\n{unit_journal(host, 'app-worker')}"
    assert json.loads(body)["result"] == 42


def test_beat_runs_on_the_first_web_host_only(host: Any) -> None:
    scheduler = host.service("app-scheduler")
    if name(host) == first_run_host():  # groups['web'][0]
        assert scheduler.is_running, unit_journal(host, "app-scheduler")
        for _ in range(30):  # beat fires every 10 s
            status, body = get(host, "/beat")
            if status == 200 and (json.loads(body).get("last") or {}).get("hostname"):
                break
            time.sleep(2)
        assert status == 200 and json.loads(body)["last"]["hostname"] == name(host), body
    else:
        assert not host.file("/etc/systemd/system/app-scheduler.service").exists
        assert not scheduler.is_running


def test_env_file_private(host: Any) -> None:
    env = host.file("/srv/app/shared/.env")
    assert (env.mode, env.user) == (0o600, "app")
    assert "SECRET_KEY=" in env.content_string and "ENVIRONMENT=production" in env.content_string


def test_units_graceful_and_restarting(host: Any) -> None:
    slot = host.file("/srv/app/state/active-slot").content_string.strip()
    out = host.check_output(f"systemctl show app-web@{slot} -p KillSignal -p TimeoutStopUSec -p Restart -p User -p NoNewPrivileges")
    props = dict(line.split("=", 1) for line in out.splitlines())
    assert props == {"KillSignal": "15", "TimeoutStopUSec": "30s", "Restart": "on-failure", "User": "app", "NoNewPrivileges": "yes"}


def test_web_unit_exposure_at_most_2(host: Any) -> None:
    slot = host.file("/srv/app/state/active-slot").content_string.strip()
    out = host.run(f"systemd-analyze security --no-pager app-web@{slot}.service").stdout
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out)
    assert match and float(match.group(1)) <= 2.0, out[-1500:]


def test_metrics_for_monitoring_through_nginx(host: Any) -> None:
    out = host.check_output("curl -s http://127.0.0.1:9180/metrics")
    assert "http_requests_total" in out, out[:500]


def test_redeploy_of_the_live_release_changes_nothing(host: Any) -> None:
    deploy_host(host)
    result = deploy(host, "1.0.0")
    assert result.rc == 0, result.output[-3000:]
    assert result.recap(name(host))["changed"] == 0, result.output[-3000:]


def test_deploy_under_load_fails_no_request(host: Any) -> None:
    deploy_host(host)
    # Bounded load: 2 connections for 60 s, a new connection per request (so nginx's graceful
    # reload closing idle keep-alive connections is not counted as a failure; a refused or
    # reset request is).
    host.run("rm -f /tmp/wrk.out; systemd-run --unit wrk-load --collect sh -c "
             "'wrk -t1 -c2 -d60s -H \"Connection: close\" https://app.test/version > /tmp/wrk.out 2>&1'")
    time.sleep(3)
    result = deploy(host, "1.1.0")
    assert result.rc == 0, result.output[-3000:]
    # Same uv.lock as 1.0.0: synced offline from uv's cache, no index access.
    assert "install=installed offline (uv, uv_lock)" in host.file("/srv/app/releases/1.1.0/.prodready-release").content_string
    for _ in range(90):
        if "Requests/sec" in host.file("/tmp/wrk.out").content_string:
            break
        time.sleep(1)
    report = host.file("/tmp/wrk.out").content_string
    requests = int(re.search(r"(\d+) requests in", report).group(1))
    non2xx = int((re.search(r"Non-2xx or 3xx responses: (\d+)", report) or [0, 0])[1])
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", report)
    assert requests > 50 and non2xx == 0 and socket_errors is None, report
    assert version(host) == "1.1.0"


def page(host: Any, path: str) -> tuple[str, dict[str, str], str]:
    """Status, headers (lower-case names) and body of a GET through nginx."""
    out = host.run(f"curl -sk -D - --max-time 20 '{SITE}{path}'")
    head, _, body = out.stdout.partition("\r\n\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head.splitlines()[1:] if ":" in line)}
    return (head.split() or ["", "0"])[1], headers, body


def asset_of(index: str) -> str:
    return re.search(r'src="(/assets/app-[0-9a-f]{8}\.js)"', index).group(1)  # type: ignore[union-attr]


def test_the_releases_spa_is_served_by_nginx_and_the_previous_builds_assets_too(host: Any) -> None:
    """#16 item 8: nginx serves the live release's frontend/dist (app_frontend_dir, readable by nginx's group
    through an ACL) at / and for client-side routes, never cached; the hashed asset of the live release and of
    the standby one (a page loaded before the switch asks for it) are served and cached for a year."""
    deploy_host(host)
    live = version(host)
    status, headers, body = page(host, "/")
    assert status == "200" and f"sampleapp frontend {live}" in body and headers.get("cache-control") == "no-cache", (status, headers, body)
    assert page(host, "/orders/7/edit")[2] == body
    slots = {host.file(f"/srv/app/slots/{slot}").linked_to.rsplit("/", 1)[-1] for slot in ("blue", "green")}
    assert live in slots and len(slots) == 2, slots  # the previous release waits in the standby slot
    for release in sorted(slots):
        asset = asset_of(host.file(f"/srv/app/releases/{release}/frontend/dist/index.html").content_string)
        status, headers, _ = page(host, asset)
        assert status == "200" and headers.get("cache-control") == "public, max-age=31536000, immutable", (release, status, headers)
    assert host.file("/srv/app/releases").mode & 0o007 == 0  # nginx reads through the ACL, not world permissions


def test_unready_release_is_stopped_and_old_keeps_serving(host: Any) -> None:
    deploy_host(host)
    live_slot = host.file("/srv/app/state/active-slot").content_string.strip()
    result = deploy(host, "1.2.0-unready", app_health_timeout=8)
    assert result.rc != 0
    assert "did not become ready" in result.output and "1.1.0 keeps serving" in result.output, result.output[-3000:]
    assert "FAIL_READY" in result.output  # the health response is shown
    assert version(host) == "1.1.0"
    other = "green" if live_slot == "blue" else "blue"
    assert not host.service(f"app-web@{other}").is_running
    assert not host.file("/srv/app/state/deploy.lock").exists


def test_failed_migration_aborts_before_the_switch(host: Any) -> None:
    deploy_host(host)
    result = deploy(host, "1.3.0-badmigration")
    assert result.rc != 0
    assert "migration of release 1.3.0-badmigration failed" in result.output, result.output[-3000:]
    assert "previous release keeps serving" in result.output
    assert version(host) == "1.1.0"
    assert not host.file("/srv/app/state/deploy.lock").exists


def test_release_commands_run_in_order_in_the_activated_venv_and_name_the_failing_one(host: Any) -> None:
    """#16: one release command, run without the virtualenv on PATH. app_release_commands run in order
    from the release directory with its virtualenv activated; the first that fails stops the deploy,
    named, and the serving release stays."""
    deploy_host(host)
    result = deploy(host, "1.3.0-badmigration", app_release_commands=[
        'test "$(command -v python)" = "$VIRTUAL_ENV/bin/python" && test "$VIRTUAL_ENV" = "$PWD/.venv"',
        "sh -c 'echo reached-the-second; exit 4'",
        "echo never",
    ])
    assert result.rc != 0
    assert "failed (release command 2/3: sh -c 'echo reached-the-second; exit 4', rc=" in result.output, result.output[-3000:]
    assert "reached-the-second" in result.output and "release command 3/3" not in result.output
    assert "previous release keeps serving" in result.output
    assert version(host) == "1.1.0"
    assert not host.file("/srv/app/state/deploy.lock").exists


def test_rollback_to_the_previous_release(host: Any) -> None:
    """The idle slot holds the unready 1.2.0 (stopped): no warm standby, so the full path restarts 1.0.0."""
    deploy_host(host)
    result = run_play(ROLLBACK, limit=name(host))
    assert result.rc == 0, result.output[-3000:]
    assert "no fast path: the" in result.output and "(full rollback path)" in result.output, result.output[-3000:]
    took = re.search(r"\(release restarted\); rollback took ([0-9.]+) s", result.output)
    assert took, result.output[-2000:]
    print(f"rollback took {took.group(1)} s")  # a figure, not an assertion (tests/bench/deploy measures it)
    assert version(host) == "1.0.0"
    # The history keeps every switch (pruning sees 1.1.0); the rollback is recorded as such.
    assert host.file("/srv/app/state/history").content_string.splitlines() == ["1.0.0", "1.1.0", "1.0.0 rollback"]


def test_rollback_to_the_warm_standby_only_moves_nginx(host: Any) -> None:
    """1.1.0 kept running in the other slot: one command checks it and moves nginx (same process),
    to an explicit release and then back to the previous one of the history."""
    deploy_host(host)
    live = host.file("/srv/app/state/active-slot").content_string.strip()
    standby = "green" if live == "blue" else "blue"
    standby_pid = host.check_output(f"systemctl show -P MainPID app-web@{standby}")
    for target, slot, last in (("1.1.0", standby, "1.1.0 rollback"), ("", live, "1.0.0 rollback")):
        result = run_play(ROLLBACK, limit=name(host), extra_vars={"app_rollback_to": target})
        assert result.rc == 0 and "(warm standby); rollback took" in result.output, result.output[-3000:]
        assert "full rollback path" not in result.output and "Choose the release to go back to" not in result.output
        assert version(host) == (target or "1.0.0")
        assert host.file("/srv/app/state/active-slot").content_string.strip() == slot
        assert host.file("/srv/app/state/history").content_string.splitlines()[-1] == last
        assert not host.file("/srv/app/state/deploy.lock").exists
        if target:
            assert host.check_output(f"systemctl show -P MainPID app-web@{standby}") == standby_pid  # not restarted


def test_stale_deploy_lock_is_reported_then_broken(host: Any) -> None:
    deploy_host(host)
    # A deploy that is running (its lock one minute old) keeps its lock even when asked to break it.
    host.run("printf 'token=live\\nversion=0.9\\nby=ci@running\\nstarted=%s\\n' $(( $(date +%s) - 60 )) > /srv/app/state/deploy.lock")
    result = deploy(host, "1.0.0", app_deploy_break_lock=True)
    assert result.rc != 0 and "Another deploy is in progress" in result.output and "only a stale lock is broken" in result.output, \
        result.output[-2000:]
    assert "token=live" in host.file("/srv/app/state/deploy.lock").content_string
    host.run("printf 'token=dead\\nversion=0.9\\nby=ci@killed\\nstarted=1\\n' > /srv/app/state/deploy.lock")
    result = deploy(host, "1.0.0")
    assert result.rc != 0 and "Stale deploy lock" in result.output and "app_deploy_break_lock" in result.output, result.output[-2000:]
    result = deploy(host, "1.0.0", app_deploy_break_lock=True)
    assert result.rc == 0 and "broke the lock: version=0.9 by=ci@killed" in result.output, result.output[-3000:]
    assert not host.file("/srv/app/state/deploy.lock").exists


def test_database_down_during_deploy_fails_before_the_switch(host: Any) -> None:
    deploy_host(host)
    assert version(host) == "1.0.0"
    host.run("systemctl stop postgresql")
    try:
        result = deploy(host, "1.1.0", app_health_timeout=5)
        assert result.rc != 0 and "did not become ready" in result.output, result.output[-3000:]
        assert version(host) == "1.0.0"  # /version needs no database: the old release kept serving
    finally:
        host.run("systemctl start postgresql")
    assert get(host, "/health/ready")[0] == 200


def test_rotating_secrets_restarts_the_live_release_on_them(host: Any) -> None:
    deploy_host(host)
    fixtures = PROJECT / "tests" / "fixtures"
    old_password = (fixtures / "postgresql" / "app.password").read_text().strip()
    new_password, new_key = "rotated-" + "p4ssw0rd" * 3, "k3y-" + "0123456789abcdef" * 3
    result = run_play(PROJECT / "playbooks" / "rotate_secrets.yml", limit=name(host), extra_vars={
        "postgresql_users": [{"name": "app", "password": new_password}], "app_secret_key": new_key})
    try:
        assert result.rc == 0, result.output[-3000:]
        assert get(host, "/health/ready")[0] == 200
        env = host.file("/srv/app/shared/.env").content_string
        assert f"SECRET_KEY={new_key}" in env and new_password in env and old_password not in env
        login = "PGPASSWORD='{}' psql -h 127.0.0.1 -U app -d app -Atc 'select 1'"
        assert host.run(login.format(new_password)).stdout.strip() == "1"
        assert host.run(login.format(old_password)).rc != 0
    finally:  # back to the inventory's secrets, through the same path
        restored = run_play(PROJECT / "playbooks" / "rotate_secrets.yml", limit=name(host))
        assert restored.rc == 0, restored.output[-3000:]


def test_a_standby_older_than_the_env_is_not_taken_warm(host: Any) -> None:
    """The rotations rewrote .env after the standby started: the helper refuses the fast path to it
    and changes nothing (rollback.yml then restarts the release on the current .env)."""
    deploy_host(host)
    live, _, _, idle_release, idle_state, fresh = host.check_output("/usr/local/sbin/app-switch status").split()
    assert (idle_state, fresh) == ("active", "no"), (idle_release, idle_state, fresh)
    out = host.run(f"/usr/local/sbin/app-switch rollback {idle_release}")
    assert out.rc == 75 and "not running on the current .env and unit" in out.stdout, out.stdout + out.stderr
    assert host.file("/srv/app/state/active-slot").content_string.strip() == live
    assert not host.file("/srv/app/state/deploy.lock").exists


@pytest.mark.parametrize(("bad", "needles"), [
    ({"app_secret_key": "changeme-changeme-changeme-changeme"}, ["app_secret_key is weak"]),
    ({"app_secret_key": "short"}, ["app_secret_key is weak", "got 5"]),
    ({"app_cors_origins": ["*"]}, ["app_cors_origins"]),
    ({"app_debug": True}, ["app_debug must be false in production"]),
    # The app's own names (app_debug_setting_names, app_cors_setting_names), not only DEBUG/CORS_ORIGINS.
    ({"app_env": {"DJANGO_DEBUG": "True"}}, ["app_env DJANGO_DEBUG=True turns debugging on", "app_debug_setting_names"]),
    ({"app_env": {"CORS_ALLOWED_ORIGINS": "*"}}, ["app_env CORS_ALLOWED_ORIGINS=* allows every origin", "app_cors_setting_names"]),
    ({"app_database_url": ""}, ["app_database_url (DATABASE_URL) is missing"]),
    ({"app_redis_url": "", "app_database_url": GOOD_URLS["app_database_url"]}, ["app_redis_url (REDIS_URL) is missing"]),
    ({"app_version": "../etc", "app_archive_sha256": ""}, ["app_version"]),
    ({"app_archive_sha256": "abc"}, ["app_archive_sha256 must be 64 hex digits"]),
    ({"app_processes": [{"name": "web", "command": "x"}]}, ["app_processes need unique names"]),
    # #16 item 6: aliases name variables of .env and their parts.
    ({"app_env_aliases": {"CELERY_BROKER_URL": "AMQP_URL"}}, ["app_env_aliases CELERY_BROKER_URL: AMQP_URL is not a variable of .env"]),
    ({"app_env_aliases": {"SECRET_KEY": "REDIS_URL"}}, ["app_env_aliases SECRET_KEY is already a variable of .env"]),
    ({"app_env_aliases": {"PGHOST": "DATABASE_URL.hostname"}}, ["app_env_aliases PGHOST: unknown part 'hostname' of DATABASE_URL"]),
    # #19: the metrics listener open to everyone.
    ({"app_metrics_allow": ["::/0"]}, ["app_metrics_allow lists ::/0, which is the whole Internet"]),
])
def test_bad_input_is_refused_before_any_change(host: Any, bad: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "app", {**GOOD_URLS, **bad}, needles)


def build_sample_app(release: str, variant: str) -> None:
    """(Re)build a sample release archive where scripts/serve-artifacts serves it."""
    subprocess.run([str(PROJECT / "scripts" / "build-sample-app"), release, "--variant", variant], check=True, capture_output=True)


def test_failed_dependency_install_leaves_no_release_and_the_fixed_archive_rebuilds(host: Any) -> None:
    """A release whose requirements cannot install stops the deploy with pip's error, leaves neither
    a marked release nor a cached archive, and the fixed archive of the same version is built anew."""
    deploy_host(host)
    serving = version(host)
    build_sample_app("1.4.0-deps", "fail-deps")
    # With pip (app_installer pip; the fail-deps archive holds requirements.txt only).
    result = deploy(host, "1.4.0-deps", app_installer="pip")
    assert result.rc != 0, result.output[-3000:]
    assert 'Building release 1.4.0-deps failed at "Install the dependencies of the release with pip' in result.output, result.output[-3000:]
    assert "No matching distribution found for prodready-no-such-package==0.0.0" in result.output  # pip's error
    assert "ModuleNotFoundError" not in result.output and "migration of release" not in result.output
    assert not host.file("/srv/app/releases/1.4.0-deps").exists
    assert not host.file("/var/cache/app/artifacts/app-1.4.0-deps.tar.gz").exists
    assert not host.file("/srv/app/state/deploy.lock").exists
    assert version(host) == serving

    build_sample_app("1.4.0-deps", "ok")
    result = deploy(host, "1.4.0-deps", app_installer="pip")
    assert result.rc == 0, result.output[-3000:]
    # auto with pip: requirements.txt (pip cannot read uv.lock), into a venv whose pip was upgraded first.
    marker = host.file("/srv/app/releases/1.4.0-deps/.prodready-release").content_string
    assert "install=installed after downloading (pip, requirements)" in marker, marker
    assert host.check_output("/srv/app/releases/1.4.0-deps/.venv/bin/pip --version").startswith("pip 26.3 ")
    assert host.check_output("/srv/app/releases/1.4.0-deps/.venv/bin/python -c 'import fastapi, celery; print(1)'") == "1"
    assert version(host) == "1.4.0-deps"


def test_rollbacks_keep_releases_and_any_kept_release_can_be_rolled_back_to(host: Any) -> None:
    """The rollbacks above took 1.1.0 off the deploy stack and no slot holds it any more; with
    app_keep_releases=5 the deploy of 1.4.0-deps kept it, and a rollback to it works."""
    deploy_host(host)
    releases = host.check_output("ls /srv/app/releases").split()
    assert {"1.0.0", "1.1.0", "1.4.0-deps"} <= set(releases), releases
    result = run_play(ROLLBACK, limit=name(host), extra_vars={"app_rollback_to": "1.1.0"})
    assert result.rc == 0, result.output[-3000:]
    assert version(host) == "1.1.0"
    assert host.file("/srv/app/state/history").content_string.splitlines()[-2:] == ["1.4.0-deps", "1.1.0 rollback"]


MANAGE = PROJECT / "playbooks" / "manage.yml"
# Prints what the command saw: account, working directory, interpreter prefix, .env values under the
# role's names and under the aliases (molecule.yml), and whether the release tree is writable.
PROBE = ("python -c 'import os, pwd, sys, urllib.parse as u; e = os.environ; "
         "print(\"probe:\", pwd.getpwuid(os.getuid()).pw_name, os.getcwd(), sys.prefix, e[\"ENVIRONMENT\"], "
         "e[\"POSTGRES_SERVER\"], e[\"POSTGRES_PORT\"], e[\"POSTGRES_USER\"], e[\"POSTGRES_DB\"], "
         "e[\"POSTGRES_PASSWORD\"] == u.unquote(u.urlsplit(e[\"DATABASE_URL\"]).password), "
         "e[\"CELERY_BROKER_URL\"] == e[\"REDIS_URL\"], os.access(os.getcwd(), os.W_OK))'")


def manage(host: Any, command: str | None, **extra: Any) -> PlayResult:
    extra_vars = {"app_command_hosts": name(host), **({"app_command": command} if command is not None else {}), **extra}
    return run_play(MANAGE, limit=name(host), extra_vars=extra_vars)


def test_manage_runs_a_command_in_the_live_release_environment(host: Any) -> None:
    """playbooks/manage.yml (#16 item 7): as the app account, from the live release with its venv, the
    units' .env (aliases included, #16 item 6) and their sandbox (the release tree is read-only)."""
    live = host.check_output("readlink -f /srv/app/current")
    env = dict(line.split("=", 1) for line in host.file("/srv/app/shared/.env").content_string.splitlines()
               if "=" in line and not line.startswith("#"))
    db = urlsplit(env["DATABASE_URL"])
    result = manage(host, PROBE)
    assert result.rc == 0, result.output[-3000:]
    expected = f"probe: app {live} {live}/.venv production {db.hostname} {db.port} app app True True False"
    assert expected in result.output, result.output[-3000:]
    secret = (PROJECT / "tests" / "fixtures" / "app" / "secret_key").read_text().strip()
    assert secret not in result.output
    # The same sandbox as the units: capability bounding set, no-new-privileges and seccomp filters of
    # the command are the web unit's (a process outside the sandbox has a full CapBnd and fewer filters).
    fields = "^(CapBnd|NoNewPrivs|Seccomp_filters):"
    sandbox = manage(host, f"grep -E '{fields}' /proc/self/status")
    assert sandbox.rc == 0, sandbox.output[-3000:]
    slot = host.file("/srv/app/state/active-slot").content_string.strip()
    pid = host.check_output(f"systemctl show -p MainPID --value app-web@{slot}")
    web = host.check_output(f"grep -E '{fields}' /proc/{pid}/status").splitlines()
    assert "CapBnd:\t0000000000000000" in web, web
    assert all(line.replace("\t", "\\t") in sandbox.output for line in web), (web, sandbox.output[-2000:])


def test_manage_names_a_failing_command_and_refuses_none(host: Any) -> None:
    failed = manage(host, "python -c 'import sys; print(\"data fix failed\"); sys.exit(4)'")
    assert failed.rc != 0
    assert "data fix failed" in failed.output and "failed on " + name(host) + " (rc=4)" in failed.output, failed.output[-3000:]
    missing = manage(host, None)
    assert missing.rc != 0 and "app_command" in missing.output, missing.output[-3000:]
    assert "changed=0" in missing.output


def test_uploads_through_the_releases_media_link_are_served_by_nginx(host: Any) -> None:
    """#16 item 11: nginx could not read shared/media (0750 for the app group), so a site's media_path
    answered 404 on every upload; and a MEDIA_ROOT inside the release had nowhere writable to go. The
    release links media/ to shared/media (app_shared_paths), the directory belongs to nginx's group with
    setgid, and nginx may only pass through app_root and shared."""
    live = host.check_output("readlink -f /srv/app/current")
    assert host.file(f"{live}/media").linked_to == "/srv/app/shared/media"
    marker = f"probe-{int(time.time())}.txt"
    written = manage(host, f"python -c \"open('media/{marker}', 'w').write('uploaded by the app')\"")
    assert written.rc == 0, written.output[-3000:]
    try:
        assert get(host, f"/media/{marker}") == (200, "uploaded by the app")
        # Nothing else opened up: nginx's account lists neither directory, nor reads the releases or .env.
        for command in ("ls /srv/app", "ls /srv/app/shared", f"ls {live}", "cat /srv/app/shared/.env"):
            assert host.run(f"runuser -u www-data -- {command}").rc != 0, command
    finally:
        host.run(f"rm -f /srv/app/shared/media/{marker}")


def test_every_worker_is_warm_before_traffic_moves(host: Any) -> None:
    """#16 item 12: the readiness wait warms one or two workers, and the first requests to the others
    waited seconds right after each switch (load generators timed out). The sample app's first request
    per worker blocks it for COLD_START_SECONDS (set for the standby slot only, by a runtime drop-in):
    a burst right after readiness meets slow workers; after the helper's warm-up, none."""
    live = host.check_output("/usr/local/sbin/app-switch status").split()[0]
    idle = {"blue": "green", "green": "blue"}[live]
    port = {"blue": 8001, "green": 8002}[idle]
    unit = f"app-web@{idle}.service"
    dropin = f"/run/systemd/system/{unit}.d"
    probe = (f"curl -s -o /dev/null -m 10 -w '%{{http_code}} %{{time_total}}\\n' -H 'Host: app.test' "
             f"-H 'X-Forwarded-Proto: https' http://127.0.0.1:{port}/health/ready")

    def start_cold() -> int:
        """Restart the slot, wait until one probe at a time gets a 200; the number of workers."""
        host.check_output(f"systemctl restart {unit}")
        host.check_output(f"for i in $(seq 60); do {probe} | grep -q '^200 ' && exit 0; sleep 0.5; done; exit 1")
        main = host.check_output(f"systemctl show -p MainPID --value {unit}")
        return int(host.check_output(f"pgrep -c -P {main}"))

    def burst(requests: int) -> list[float]:
        out = host.check_output(f"for i in $(seq {requests}); do {probe} & done; wait")
        answers = [line.split() for line in out.splitlines()]
        assert all(code == "200" for code, _ in answers), answers
        return sorted(float(seconds) for _, seconds in answers)

    host.check_output(f"mkdir -p {dropin} && printf '[Service]\\nEnvironment=COLD_START_SECONDS=2\\n' > {dropin}/cold.conf"
                      " && systemctl daemon-reload")
    try:
        workers = start_cold()
        assert workers >= 2, workers
        cold = burst(2 * workers)
        assert cold[-1] >= 1.5, f"no cold worker met: {cold}"
        start_cold()
        warmed = host.check_output(f"/usr/local/sbin/app-switch warm {idle} {2 * workers}")
        assert warmed.startswith("warm after "), warmed
        assert burst(2 * workers)[-1] < 1.0, warmed
    finally:
        host.run(f"rm -rf {dropin} && systemctl daemon-reload && systemctl restart {unit}")


def test_build_commands_write_the_release_before_it_is_frozen(host: Any) -> None:
    """#16 item 4: collectstatic and frontend builds write into the release tree, read-only at run time.
    app_build_commands (molecule.yml) ran as the app account with .env and the venv, before the freeze."""
    live = host.check_output("readlink -f /srv/app/current")
    built = host.file(f"{live}/staticfiles/build.txt")
    assert built.content_string.startswith("production "), built.content_string
    assert built.user == "root" and built.mode & 0o022 == 0, (built.user, oct(built.mode))
    assert manage(host, "touch staticfiles/late.txt").rc != 0, "the running app can write its own release"


def test_a_failing_build_command_stops_the_deploy_named(host: Any) -> None:
    """Also #16 item 10: the build packages are there during the build (command 1 passes) and the ones
    the build added are gone after it, the failed one too."""
    deploy_host(host)
    build_sample_app("1.5.0-build", "ok")
    before = version(host)
    assert host.run("dpkg-query --show --showformat='${db:Status-Abbrev}' libpq-dev").stdout.strip() != "ii"
    result = deploy(host, "1.5.0-build", app_build_packages=["libpq-dev"], app_build_packages_remove=True,
                    app_build_commands=["dpkg-query --show libpq-dev", "sh -c 'echo static files broken >&2; exit 3'"])
    assert result.rc != 0
    assert "(build command 2/2: sh -c 'echo static files broken >&2; exit 3')" in result.output, result.output[-3000:]
    assert host.run("dpkg-query --show --showformat='${db:Status-Abbrev}' libpq-dev").stdout.strip() != "ii"
    assert "static files broken" in result.output
    assert version(host) == before
    assert not host.file("/srv/app/releases/1.5.0-build").exists
    assert not host.file("/srv/app/state/deploy.lock").exists


def test_a_failure_after_the_health_gate_leaves_no_lock_and_the_next_deploy_proceeds(host: Any) -> None:
    """#20 item 6: a process unit that cannot start fails the switch after traffic moved (not the health
    gate, whose path released the lock before): the run releases its lock on the way out (it stayed
    before the fix), so the next deploy needs no app_deploy_break_lock."""
    deploy_host(host)
    defaults = yaml.safe_load((PROJECT / "roles" / "app" / "defaults" / "main.yml").read_text())["app_processes"]
    broken = [*defaults, {"name": "broken", "command": ".venv/bin/prodready-no-such-program", "singleton": False}]
    build_sample_app("1.6.0-lock", "ok")
    try:
        result = deploy(host, "1.6.0-lock", app_processes=broken)
        assert result.rc != 0 and "app-broken" in result.output, result.output[-3000:]
        assert not host.file("/srv/app/state/deploy.lock").exists
    finally:
        host.run("systemctl disable --now app-broken.service; rm -f /etc/systemd/system/app-broken.service; systemctl daemon-reload")
    result = deploy(host, "1.6.0-lock")
    assert result.rc == 0, result.output[-3000:]
    assert version(host) == "1.6.0-lock"
