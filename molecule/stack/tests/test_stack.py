"""The three-host stack (web, db, monitoring) after site.yml + deploy.yml of the Django sample app
(tests/fixtures/djangoapp): cross-host behaviour, the Django project's own checks (ALLOWED_HOSTS, the SSL
redirect, collectstatic's manifest, Celery), the readiness report over every host, a deploy killed
mid-play, a deploy under load, the installed collection."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra

from conftest import PROJECT, VENV_COLLECTIONS, PlayResult, assert_refused, container_ip, run_command, run_play, start_play

WEB, DB, MON = "stack-web", "stack-db", "stack-mon"
PLAYBOOKS = PROJECT / "playbooks"
CURL_APP = "curl -s --max-time 10 --cacert /etc/ssl/stack/ca.crt https://app.stack.test"
EXPECTED_ITEMS = {
    WEB: {"App release serving from the live slot", "App readiness check answers 200",
          "nginx upstream points at the live slot", "App web unit sandboxed (systemd-analyze security <= 2.0)"},
    DB: {"Latest dump readable by pg_restore --list", "Restore test scheduled and passing"},
    MON: {"Every Prometheus target is up", "Alert and recording rules loaded and evaluating"},
}


@pytest.fixture(scope="module")
def hosts() -> dict[str, Any]:
    return {name: testinfra.get_host(f"docker://{name}") for name in (WEB, DB, MON)}


def app_json(host: Any, path: str) -> dict[str, Any]:
    out = host.run(f"{CURL_APP}{path}")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def prometheus(mon: Any, path: str) -> Any:
    return json.loads(mon.check_output(f"curl -s --max-time 10 'http://127.0.0.1:9090/api/v1/{path}'"))["data"]


def test_site_skips_unchanged_hosts_and_sees_a_drifted_one(hosts: dict[str, Any]) -> None:
    """Right after converge, idempotence and check mode, site.yml with the skip on finds every host
    unchanged (one check each, no role runs). A file drifted on stack-db makes the same check ask
    for a full converge and name the file; put back as it was, the host is unchanged again."""
    fast = run_play(PLAYBOOKS / "site.yml", "all", extra_vars={"converged_skip_unchanged": True})
    assert fast.rc == 0 and fast.output.count("unchanged since the last full converge") == 3, fast.output[-4000:]
    assert all(fast.recap(name)["changed"] == 0 for name in (WEB, DB, MON))
    assert "TASK [prodready.webstack.base" not in fast.output and "TASK [prodready.webstack.app" not in fast.output

    check = [{"name": "Converged check", "hosts": DB, "become": True, "gather_facts": True,
              "tasks": [{"ansible.builtin.include_role": {"name": "prodready.webstack.converged"}}]}]
    hosts[DB].run("cp -a /etc/issue.net /root/issue.net.orig && echo 'drifted by hand' >> /etc/issue.net")
    try:
        drifted = run_play(check, DB, extra_vars={"converged_skip_unchanged": True})
        assert drifted.rc == 0 and "full converge: drift in files" in drifted.output, drifted.output[-3000:]
        assert "now: /etc/issue.net f 644 root:root" in drifted.output
    finally:
        hosts[DB].run("cp -a /root/issue.net.orig /etc/issue.net && rm /root/issue.net.orig")
    again = run_play(check, DB, extra_vars={"converged_skip_unchanged": True})
    assert "unchanged since the last full converge" in again.output, again.output[-3000:]


def test_app_ready_over_tls_from_the_monitoring_host(hosts: dict[str, Any]) -> None:
    """The site's certificate verifies against the scenario CA; readiness covers the remote database."""
    body = app_json(hosts[MON], "/health/ready")
    assert body.get("status") == "ok", body
    assert app_json(hosts[MON], "/version")["version"] == "1.0.0"


def test_app_sessions_come_from_the_web_host(hosts: dict[str, Any]) -> None:
    """The release migrated the database on stack-db (Django's migrate) and its connections come from stack-web."""
    app_json(hosts[MON], "/items")  # a request that holds a connection (CONN_MAX_AGE)
    sql = ("select count(*) from pg_stat_activity where usename = 'app' and client_addr = '{}'; "
           "select count(*) from django_migrations where app = 'items'")
    out = hosts[DB].run(f"runuser -u postgres -- psql -d app -Atc \"{sql.format(container_ip(WEB))}\"")
    sessions, revisions = out.stdout.split()
    assert out.rc == 0 and int(sessions) >= 1 and int(revisions) == 1, out.stdout + out.stderr


def live_port(web: Any) -> str:
    """The port nginx sends the site's traffic to (the live slot)."""
    return web.check_output("grep -oE '127.0.0.1:[0-9]+' /etc/nginx/upstreams/app.conf | head -n 1 | cut -d: -f2")


@pytest.mark.parametrize(("headers", "status"), [
    ("", 400),                                                              # Host 127.0.0.1: not in ALLOWED_HOSTS
    ("-H 'Host: app.stack.test'", 301),                                     # plain HTTP: SECURE_SSL_REDIRECT
    ("-H 'Host: app.stack.test' -H 'X-Forwarded-Proto: https'", 200),       # what nginx and the probes send
])
def test_the_django_app_keeps_allowed_hosts_and_the_ssl_redirect_on(hosts: dict[str, Any], headers: str, status: int) -> None:
    """#16 item 5: the project's own ALLOWED_HOSTS and SSL redirect stay on; the deploy's health gate and
    the readiness report ask as nginx forwards (the deploy in converge passed its gate)."""
    code = hosts[WEB].check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {headers} http://127.0.0.1:{live_port(hosts[WEB])}/health/ready")
    assert code == str(status)


def test_collected_static_files_are_served_hashed_and_cached(hosts: dict[str, Any]) -> None:
    """collectstatic (app_build_commands) wrote the manifest into the release before it was frozen;
    whitenoise serves the hashed name through nginx over TLS with a far-future cache header."""
    manifest = json.loads(hosts[WEB].file("/srv/app/current/staticfiles/staticfiles.json").content_string)
    hashed = manifest["paths"]["shop/app.css"]
    assert hashed != "shop/app.css", manifest
    out = hosts[MON].run(f"curl -s -D - -o /dev/null {CURL_APP.removeprefix('curl -s ')}/static/{hashed}")
    assert out.rc == 0 and out.stdout.startswith("HTTP/") and " 200" in out.stdout.splitlines()[0], out.stdout
    assert "max-age=315360000" in out.stdout.lower(), out.stdout


def test_celery_beat_and_worker_run_the_projects_tasks(hosts: dict[str, Any]) -> None:
    """Beat schedules items.tasks.heartbeat every 30 s through Redis; the worker runs it."""
    for _ in range(50):
        journal = hosts[WEB].run("journalctl -u app-worker --no-pager -o cat --since '-10min'").stdout
        if "items.tasks.heartbeat" in journal and "succeeded" in journal:
            return
        time.sleep(2)
    pytest.fail(f"no heartbeat task succeeded in the worker's journal:\n{journal[-2000:]}")


@pytest.mark.parametrize("source,reachable", [(WEB, True), (MON, False)])
def test_database_port_answers_the_web_hosts_only(hosts: dict[str, Any], source: str, reachable: bool) -> None:
    probe = hosts[source].run(f"timeout 3 bash -c '</dev/tcp/{container_ip(DB)}/5432'")
    assert (probe.rc == 0) is reachable, (source, probe.rc, probe.stderr)


def test_prometheus_scrapes_every_host_and_probes_the_site(hosts: dict[str, Any]) -> None:
    targets = prometheus(hosts[MON], "targets?state=active")["activeTargets"]
    down = [t["scrapeUrl"] for t in targets if t["health"] != "up"]
    assert not down, down
    instances = {t["labels"].get("instance") for t in targets}
    assert {WEB, DB, MON} <= instances, instances
    assert any(":9180/" in t["scrapeUrl"] for t in targets), "the app's metrics (9180 on the web host) are not scraped"
    probes = prometheus(hosts[MON], "query?query=probe_success")["result"]
    assert probes and all(p["value"][1] == "1" for p in probes), probes


def test_readiness_report_passes_on_every_host(tmp_path: Path) -> None:
    first_backup = run_play(PLAYBOOKS / "backup.yml", limit="all")
    assert first_backup.rc == 0, first_backup.output[-4000:]
    report_path = tmp_path / "report.json"
    result = run_play(PLAYBOOKS / "verify.yml", limit="all", env_extra={"PRODREADY_REPORT": str(report_path)})
    assert result.rc == 0 and "Failed: 0" in result.output, result.output[-4000:]
    report = json.loads(report_path.read_text())
    assert report["failed"] == 0 and sorted(report["hosts"]) == sorted([WEB, DB, MON])
    for name, items in EXPECTED_ITEMS.items():
        measured = {item["item"] for item in report["items"] if item.get("host") == name}
        assert items <= measured, (name, items - measured)
    assert all(item["passed"] and item["detail"] for item in report["items"])


def test_report_fails_when_an_item_fails(hosts: dict[str, Any], tmp_path: Path) -> None:
    """Break one checklist item on the database host: the report names it and the run fails."""
    hosts[DB].run("systemctl stop fail2ban")
    try:
        result = run_play(PLAYBOOKS / "verify.yml", limit=DB, env_extra={"PRODREADY_REPORT": str(tmp_path / "r.json")})
    finally:
        hosts[DB].run("systemctl start fail2ban")
    assert result.rc != 0
    assert f"{DB}: fail2ban guards sshd" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == 1


def test_site_refuses_bad_input_before_any_change(hosts: dict[str, Any]) -> None:
    """A mistake in the database host's input stops site.yml on every host before anything changes."""
    result = run_play(PLAYBOOKS / "site.yml", limit="all",
                      extra_vars={"postgresql_max_connections": "many", "base_extra_packages": ["sl"]})
    assert_refused(result, DB, "postgresql_max_connections")
    assert "Check every input before changing anything" in result.output
    assert result.recap(WEB)["changed"] == 0 and result.recap(MON)["changed"] == 0
    assert not hosts[WEB].package("sl").is_installed


def kill_when(play: subprocess.Popen[str], log: Path, marker: str, timeout: float = 300) -> None:
    """SIGKILL the play's process group once its log shows marker (a task starting)."""
    deadline = time.monotonic() + timeout
    while marker not in log.read_text() and time.monotonic() < deadline and play.poll() is None:
        time.sleep(0.5)
    output = log.read_text()
    assert marker in output and play.poll() is None, f"{marker!r} never started:\n{output[-3000:]}"
    os.killpg(play.pid, signal.SIGKILL)
    play.wait(timeout=30)


def start_load(client: Any) -> None:
    """Bounded load on the site (2 connections, a new one per request so nginx's graceful reload closing
    idle keep-alive connections is not counted; at most 5 minutes), until stop_load."""
    client.run("rm -f /tmp/wrk.out; systemd-run --unit wrk-load --collect sh -c "
               "'exec wrk -t1 -c2 -d300s -H \"Connection: close\" https://app.stack.test/version > /tmp/wrk.out 2>&1'")
    time.sleep(3)


def stop_load(client: Any) -> str:
    """Stop the load (wrk prints its summary on SIGINT) and return wrk's report."""
    client.run("systemctl kill --signal=INT wrk-load")
    for _ in range(30):
        report = client.file("/tmp/wrk.out").content_string
        if "Requests/sec" in report:
            return report
        time.sleep(1)
    pytest.fail(f"wrk printed no summary:\n{client.file('/tmp/wrk.out').content_string}")


def test_killed_deploy_is_reported_then_recovers(hosts: dict[str, Any], tmp_path: Path) -> None:
    """deploy.yml killed while it builds release 1.1.0: 1.0.0 keeps serving, the next run reports
    the lock the killed run left, breaking it converges, and a re-run then changes nothing."""
    deploy = PLAYBOOKS / "deploy.yml"
    limit = f"{WEB},{DB}"  # deploy.yml reads DATABASE_URL from the db host
    killed = start_play(deploy, limit, tmp_path, extra_vars={"app_version": "1.1.0"})
    kill_when(killed, tmp_path / "play.log", "TASK [prodready.webstack.app : Install the dependencies of the release")
    assert app_json(hosts[MON], "/version")["version"] == "1.0.0"
    assert hosts[WEB].file("/srv/app/state/deploy.lock").exists

    refused = run_play(deploy, limit, extra_vars={"app_version": "1.1.0", "app_deploy_lock_stale_minutes": 0})
    assert_refused(refused, WEB, "Stale deploy lock", "version=1.1.0", "app_deploy_break_lock=true")

    # The lock is seconds old: app_deploy_break_lock alone keeps it (a running deploy's lock stays); the
    # operator who checked that no deploy runs declares it stale (#20 item 6).
    kept = run_play(deploy, limit, extra_vars={"app_version": "1.1.0", "app_deploy_break_lock": True})
    assert_refused(kept, WEB, "Another deploy is in progress", "only a stale lock is broken")
    # The deploy that recovers builds and switches to 1.1.0 under load from the monitoring host (#16: zero
    # failed requests for the Django app too).
    start_load(hosts[MON])
    recovered = run_play(deploy, limit, extra_vars={"app_version": "1.1.0", "app_deploy_break_lock": True,
                                                    "app_deploy_lock_stale_minutes": 0})
    report = stop_load(hosts[MON])
    assert recovered.rc == 0 and "broke the lock" in recovered.output, recovered.output[-4000:]
    requests = int(re.search(r"(\d+) requests in", report).group(1))
    assert requests > 50 and "Non-2xx" not in report and "Socket errors" not in report, report
    assert app_json(hosts[MON], "/version")["version"] == "1.1.0"
    assert app_json(hosts[MON], "/health/ready")["status"] == "ok"
    assert not hosts[WEB].file("/srv/app/state/deploy.lock").exists

    again: PlayResult = run_play(deploy, limit, extra_vars={"app_version": "1.1.0"})
    assert again.rc == 0 and again.recap(WEB)["changed"] == 0, again.output[-4000:]


def test_deploy_limited_to_the_web_host_names_the_missing_database_url() -> None:
    result = run_play(PLAYBOOKS / "deploy.yml", WEB, extra_vars={"app_version": "1.0.0"})
    assert_refused(result, WEB, "app_database_url (DATABASE_URL) is missing", f"--limit '{WEB},{DB}'")


def test_rollback_returns_to_the_previous_release(hosts: dict[str, Any]) -> None:
    if app_json(hosts[MON], "/version")["version"] != "1.1.0":
        pytest.skip("needs the 1.1.0 deploy of the previous test")
    live = hosts[WEB].file("/srv/app/state/active-slot").content_string.strip()
    standby = "green" if live == "blue" else "blue"
    assert hosts[WEB].service(f"app-web@{standby}").is_running, "no warm standby (app_keep_previous_slot)"
    result = run_play(PLAYBOOKS / "rollback.yml", WEB)
    assert result.rc == 0 and "(warm standby); rollback took" in result.output, result.output[-4000:]
    assert app_json(hosts[MON], "/version")["version"] == "1.0.0"
    assert hosts[WEB].file("/srv/app/state/active-slot").content_string.strip() == standby


def test_verify_runs_from_the_built_and_installed_collection(tmp_path: Path) -> None:
    """ansible-galaxy collection build -> install into a clean path -> run a playbook by FQCN,
    with the checkout out of the collections path."""
    subprocess.run(["ansible-galaxy", "collection", "build", "-f", "--output-path", str(tmp_path), str(PROJECT)],
                   check=True, capture_output=True)
    tarball = next(tmp_path.glob("prodready-webstack-*.tar.gz"))
    # --force: molecule's environment lists the checkout's link, which galaxy would take as installed.
    done = subprocess.run(["ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", str(tmp_path / "installed"),
                           str(tarball)], check=True, capture_output=True, text=True)
    installed = tmp_path / "installed" / "ansible_collections" / "prodready" / "webstack"
    assert (installed / "playbooks" / "verify.yml").is_file() and not installed.is_symlink(), done.stdout
    result = run_play(Path("prodready.webstack.verify"), limit=WEB, env_extra={
        "ANSIBLE_COLLECTIONS_PATH": ":".join([str(tmp_path / "installed"), *map(str, VENV_COLLECTIONS)]),
        "PRODREADY_REPORT": str(tmp_path / "report.json")})
    assert result.rc == 0 and "Failed: 0" in result.output, result.output[-3000:]


REHEARSAL_VAULT_PASSWORD = "rehearsal-vault-password"


def _vault_host_var(name: str, value: str, vault_id: str, password_file: Path) -> str:
    """`name: !vault |` and the value encrypted with vault_id, as ansible-vault writes it."""
    done = subprocess.run(["ansible-vault", "encrypt_string", "--vault-id", f"{vault_id}@{password_file}",
                           "--stdin-name", name], input=value, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _workflow_inputs(hosts: dict[str, Any], tmp: Path) -> tuple[dict[str, str], Path]:
    """The environment scripts/ci-deploy gets from deploy.yml's secrets and variables, for the
    vault id `rehearsal`, and an inventory source that reaches the three hosts over SSH as the
    deploy user with the web host's SECRET_KEY from that vault (same value as the scenario's)."""
    password = tmp / "vault.pass"
    password.write_text(f"{REHEARSAL_VAULT_PASSWORD}\n")
    secret = (PROJECT / "tests" / "fixtures" / "app" / "secret_key").read_text().strip()
    lines = ["all:", "  hosts:"]
    known_hosts = []
    for name in (WEB, DB, MON):
        address = container_ip(name)
        lines += [f"    {name}:", "      ansible_connection: ssh", f"      ansible_host: {address}",
                  "      ansible_user: deploy", "      ansible_python_interpreter: /usr/bin/python3"]
        if name == WEB:
            lines += ["      " + line for line in _vault_host_var("app_secret_key", secret, "rehearsal", password).splitlines()]
        key = hosts[name].file("/etc/ssh/ssh_host_ed25519_key.pub").content_string.split()
        known_hosts.append(f"{address} {key[0]} {key[1]}")
    ssh_inventory = tmp / "ssh.yml"
    ssh_inventory.write_text("\n".join(lines) + "\n")
    runner_temp = Path(tempfile.mkdtemp(prefix="runner-", dir="/tmp"))  # short: SSH control sockets live there
    env = {
        "DEPLOY_ENV": "rehearsal",
        "APP_VERSION": app_json(hosts[MON], "/version")["version"],
        "VAULT_PASSWORD": REHEARSAL_VAULT_PASSWORD,
        "SSH_PRIVATE_KEY": (PROJECT / "tests" / "fixtures" / "ssh" / "id_ed25519").read_text(),
        "SSH_KNOWN_HOSTS": "\n".join(known_hosts),
        # The scenario's inventory (group_vars beside it), then the SSH connection over it.
        "DEPLOY_INVENTORY": f"{os.environ.get('MOLECULE_INVENTORY_FILE', '')} {ssh_inventory}",
        "PRODREADY_REPORT": str(tmp / "report.json"),
        "RUNNER_TEMP": str(runner_temp),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp / "facts"),
    }
    return env, runner_temp


def test_deploy_workflow_step_over_ssh_with_vault_and_pinned_keys(hosts: dict[str, Any], tmp_path: Path) -> None:
    """scripts/ci-deploy, the step of both jobs of .github/workflows/deploy.yml: over SSH as the
    deploy user, host keys pinned, SECRET_KEY from vault id `rehearsal`. A host key that is not the
    pinned one and a wrong vault password stop it before any change; the right inputs redeploy the
    live release (changed=0) and write a passing report. The credentials never outlive a run."""
    if not os.environ.get("MOLECULE_INVENTORY_FILE"):
        pytest.skip("MOLECULE_INVENTORY_FILE is not set: run through molecule verify")
    env, runner_temp = _workflow_inputs(hosts, tmp_path)
    ci_deploy = [str(PROJECT / "scripts" / "ci-deploy")]
    pinned = env["SSH_KNOWN_HOSTS"].splitlines()
    assert pinned[0].split()[2] != pinned[1].split()[2], "web and db share a host key: the wrong-key case would pass"
    wrong_key = {**env, "SSH_KNOWN_HOSTS": "\n".join([pinned[0].split()[0] + " " + pinned[1].split(maxsplit=1)[1], *pinned[1:]])}
    unpinned = run_command(ci_deploy, wrong_key)
    assert unpinned.rc != 0 and "Host key verification failed" in unpinned.output, unpinned.output[-3000:]
    assert unpinned.recap(WEB)["unreachable"] == 1 and unpinned.recap(DB)["changed"] == 0
    assert not list(runner_temp.iterdir()), "credentials left behind"

    wrong_vault = run_command(ci_deploy, {**env, "VAULT_PASSWORD": "not-the-password"})
    assert wrong_vault.rc != 0 and "Decryption failed" in wrong_vault.output, wrong_vault.output[-3000:]
    assert wrong_vault.recap(WEB)["changed"] == 0 and wrong_vault.recap(DB)["changed"] == 0
    assert not list(runner_temp.iterdir()), "credentials left behind"

    deployed = run_command(ci_deploy, env, timeout=900)
    assert deployed.rc == 0 and "Failed: 0" in deployed.output, deployed.output[-4000:]
    assert deployed.recap(WEB)["changed"] == 0, deployed.output[-4000:]
    report = json.loads(Path(env["PRODREADY_REPORT"]).read_text())
    assert report["failed"] == 0 and sorted(report["hosts"]) == sorted([WEB, DB, MON]), report
    assert not list(runner_temp.iterdir()), "credentials left behind"
    web_auth = hosts[WEB].run("journalctl -u ssh -u sshd --since '-15min' --no-pager | grep -c 'Accepted publickey for deploy'")
    assert int(web_auth.stdout.strip() or 0) >= 1, "no SSH login of the deploy user on the web host"
