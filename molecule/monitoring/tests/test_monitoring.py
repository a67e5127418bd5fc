"""Live behaviour of prodready.webstack.exporters and prodready.webstack.monitoring across hosts.

monitoring-app (Debian 12, web+db) runs the exporters behind the hardening firewall and a stand-in
app (app-web@blue, prepare.yml); monitoring-mon (Debian 13) runs Prometheus, Alertmanager (webhook
receiver on 127.0.0.1:9999 writing /var/lib/webhook-sink/alerts.jsonl), the blackbox exporter and
systemd-journal-remote; monitoring-other is in no group and must not reach the exporters.
Waiting loops are bounded (attempts x sleep); nothing asserts on a duration.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import testinfra

from conftest import assert_refused, container_ip, role_play, run_play, unit_journal

APP, MON, OTHER = "monitoring-app", "monitoring-mon", "monitoring-other"
PROM = "http://127.0.0.1:9090"
ALERTS = "/var/lib/webhook-sink/alerts.jsonl"
EXPORTER_PORTS = {"node": 9100, "postgres": 9187, "nginx": 9113}
APP_METRICS_PORT = 9180
BCRYPT = "$2y$10$GeHQDO/QRd9D5izKlaM/9e94vn2W5V0w4r1kZgh4BQj2hUO7IyTEC"  # htpasswd -nbBC 10 for a test password


@pytest.fixture(scope="module")
def app() -> Any:
    return testinfra.get_host(f"docker://{APP}")


@pytest.fixture(scope="module")
def mon() -> Any:
    return testinfra.get_host(f"docker://{MON}")


@pytest.fixture(scope="module")
def other() -> Any:
    return testinfra.get_host(f"docker://{OTHER}")


def api(mon: Any, path: str) -> Any:
    out = mon.check_output(f"curl -sS --max-time 5 '{PROM}{path}'")
    data = json.loads(out)
    assert data["status"] == "success", out
    return data["data"]


def wait_for(probe: Callable[[], Any], attempts: int = 40, pause: float = 2.0) -> Any:
    """Call probe until it returns something truthy (bounded); return the last result."""
    result = None
    for _ in range(attempts):
        result = probe()
        if result:
            return result
        time.sleep(pause)
    return result


def webhook_payloads(mon: Any) -> Iterator[dict[str, Any]]:
    text = mon.run(f"cat {ALERTS}").stdout if mon.file(ALERTS).exists else ""
    return (json.loads(line) for line in text.splitlines() if line.strip())


# ---------------------------------------------------------------- exporters


@pytest.mark.parametrize("name", ["prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-nginx-exporter"])
def test_exporters_run_on_the_app_host(app: Any, name: str) -> None:
    assert app.service(name).is_running, unit_journal(app, name)
    assert app.service(name).is_enabled


def test_exporters_listen_on_the_host_address_only(app: Any) -> None:
    ip = container_ip(APP)
    listeners = app.check_output("ss -ltnH").splitlines()
    for port in EXPORTER_PORTS.values():
        local = [line.split()[3] for line in listeners if line.split()[3].endswith(f":{port}")]
        assert local == [f"{ip}:{port}"], (port, listeners)


def test_node_exporter_has_the_textfile_and_systemd_collectors(app: Any) -> None:
    args = app.file("/etc/default/prometheus-node-exporter").content_string
    assert "--collector.textfile.directory=/var/lib/prometheus/node-exporter" in args
    assert "--collector.systemd.unit-include=(app-.*|nginx|postgresql.*|redis.*|pgbouncer|prodready-.*)\\.service" in args
    app.run_test("printf '# TYPE prodready_test_marker gauge\\nprodready_test_marker 42\\n' "
                 "> /var/lib/prometheus/node-exporter/prodready_test.prom")
    metrics = app.check_output(f"curl -sS --max-time 5 http://{container_ip(APP)}:9100/metrics")
    assert "prodready_test_marker 42" in metrics
    assert 'node_systemd_unit_state{name="app-web@blue.service",state="active",type="simple"} 1' in metrics
    assert 'node_systemd_unit_state{name="nginx.service",state="active"' in metrics
    assert 'name="ssh.service"' not in metrics  # outside the unit-include expression


def test_postgres_exporter_uses_a_pg_monitor_role(app: Any) -> None:
    env = app.file("/etc/default/prometheus-postgres-exporter")
    assert (env.user, env.group, env.mode) == ("root", "prometheus", 0o640)
    row = app.check_output(
        "cd /tmp && runuser -u postgres -- psql -X -At -c \"SELECT rolsuper, rolcreaterole, "
        "pg_has_role('postgres_exporter', 'pg_monitor', 'member') FROM pg_roles WHERE rolname = 'postgres_exporter'\"")
    assert row == "f|f|t"
    metrics = app.check_output(f"curl -sS --max-time 10 http://{container_ip(APP)}:9187/metrics")
    assert "\npg_up 1" in metrics, metrics[-2000:]
    assert "pg_settings_max_connections" in metrics


def test_nginx_exporter_reads_stub_status(app: Any) -> None:
    metrics = app.check_output(f"curl -sS --max-time 5 http://{container_ip(APP)}:9113/metrics")
    assert "\nnginx_up 1" in metrics
    assert "nginx_connections_active" in metrics


@pytest.mark.parametrize("port", [*EXPORTER_PORTS.values(), APP_METRICS_PORT])
def test_only_the_monitoring_host_reaches_the_scrape_ports(mon: Any, other: Any, port: int) -> None:
    url = f"http://{container_ip(APP)}:{port}/metrics"
    assert mon.run(f"curl -sS -o /dev/null -w '%{{http_code}}' --max-time 5 {url}").stdout == "200"
    refused = other.run(f"curl -sS -o /dev/null --connect-timeout 3 --max-time 5 {url}")
    assert refused.rc != 0, f"{OTHER} reached {url}"
    assert refused.rc in (7, 28), refused.stderr  # connection refused or timed out (dropped by nftables)


def test_the_app_host_itself_cannot_scrape_the_monitoring_host_prometheus(app: Any) -> None:
    """Prometheus, Alertmanager and blackbox listen on the monitoring host's loopback only."""
    result = app.run(f"curl -sS -o /dev/null --connect-timeout 3 --max-time 5 http://{container_ip(MON)}:9090/-/ready")
    assert result.rc != 0


# ---------------------------------------------------------------- Prometheus


def test_every_prometheus_target_is_up(mon: Any) -> None:
    def all_up() -> list[dict[str, Any]] | None:
        targets = api(mon, "/api/v1/targets?state=active")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_for(all_up, attempts=30)
    if not targets:
        targets = api(mon, "/api/v1/targets?state=active")["activeTargets"]
        down = [(t["labels"]["job"], t["scrapeUrl"], t["lastError"]) for t in targets if t["health"] != "up"]
        pytest.fail(f"targets not up: {down}")
    jobs = sorted((t["labels"]["job"], t["labels"]["instance"]) for t in targets)
    assert jobs == sorted([
        ("alertmanager", MON), ("app", APP), ("blackbox", MON), ("blackbox_http", "https://app.monitoring.test/health/ready"),
        ("nginx", APP), ("node", APP), ("node", MON), ("postgres", APP), ("prometheus", MON),
    ]), jobs


def test_the_readiness_probe_trusts_the_site_and_reads_its_certificate(mon: Any) -> None:
    result = api(mon, "/api/v1/query?query=probe_ssl_earliest_cert_expiry%20-%20time()")["result"]
    assert result and float(result[0]["value"][1]) > 86400, result
    success = api(mon, "/api/v1/query?query=probe_success")["result"]
    assert [r["value"][1] for r in success] == ["1"], success


def test_rules_are_loaded_and_evaluating(mon: Any) -> None:
    groups = api(mon, "/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    names = {rule["name"] for rule in rules if rule["type"] == "alerting"}
    assert {"InstanceDown", "DiskSpaceLow", "BackupTooOld", "CertificateExpiringSoon", "AppReadinessFailing"} <= names
    assert [rule["name"] for rule in rules if rule.get("health") == "err"] == []


def test_prometheus_and_alertmanager_configs_pass_their_checkers(mon: Any) -> None:
    assert mon.run("promtool check config /etc/prometheus/prometheus.yml").rc == 0
    assert mon.run("amtool check-config /etc/prometheus/alertmanager.yml").rc == 0
    assert mon.file("/etc/prometheus/alertmanager.yml").mode == 0o640


def test_retention_is_set(mon: Any) -> None:
    flags = api(mon, "/api/v1/status/flags")
    assert flags["storage.tsdb.retention.time"] == "30d"
    assert flags["web.listen-address"] == "127.0.0.1:9090"


# ---------------------------------------------------------------- alerting round trip


def test_stopping_the_app_fires_an_alert_that_resolves_after_start(app: Any, mon: Any) -> None:
    def received(status: str) -> list[dict[str, Any]]:
        return [alert for payload in webhook_payloads(mon) for alert in payload["alerts"]
                if alert["labels"].get("alertname") == "InstanceDown" and alert["labels"].get("job") == "app"
                and alert["status"] == status]

    assert wait_for(lambda: api(mon, "/api/v1/query?query=up%7Bjob%3D%22app%22%7D")["result"][0]["value"][1] == "1", 30)
    mon.run_test(f"truncate -s 0 {ALERTS}")
    app.run_test("systemctl stop app-web@blue")
    try:
        firing = wait_for(lambda: received("firing"), attempts=45)
    finally:
        app.run_test("systemctl start app-web@blue")
    assert firing, f"no firing InstanceDown{{job=app}} reached the webhook: {list(webhook_payloads(mon))}"
    assert firing[0]["labels"]["instance"] == APP and firing[0]["labels"]["severity"] == "critical"
    assert firing[0]["annotations"]["summary"] == f"app target {APP} is down"
    resolved = wait_for(lambda: received("resolved"), attempts=45)
    assert resolved, f"InstanceDown{{job=app}} never resolved at the webhook: {list(webhook_payloads(mon))}"
    payload = next(p for p in webhook_payloads(mon) if any(a in resolved for a in p["alerts"]))
    assert payload["receiver"] == "prodready" and payload["status"] == "resolved"


# ---------------------------------------------------------------- logs


def test_the_app_hosts_journal_arrives_on_the_monitoring_host(app: Any, mon: Any) -> None:
    assert app.service("systemd-journal-upload").is_running, unit_journal(app, "systemd-journal-upload")
    marker = f"marker-{uuid.uuid4()}"
    app.run_test(f"logger -t app-test {marker}")
    found = wait_for(lambda: marker in mon.run(
        "journalctl --directory=/var/log/journal/remote -t app-test --no-pager -o cat").stdout, attempts=30)
    assert found, unit_journal(mon, "systemd-journal-remote")
    # The stand-in app's own JSON lines travel the same way.
    lines = mon.run(f"journalctl --directory=/var/log/journal/remote --no-pager -o cat _HOSTNAME={APP} "
                    "_SYSTEMD_UNIT=app-web@blue.service").stdout
    assert '"path": "/metrics"' in lines


def test_journal_remote_listens_on_the_network_and_vacuums(mon: Any) -> None:
    assert mon.socket(f"tcp://{container_ip(MON)}:19532").is_listening
    assert mon.service("prodready-journal-remote-vacuum.timer").is_enabled
    assert mon.run("systemctl start prodready-journal-remote-vacuum.service").rc == 0, \
        unit_journal(mon, "prodready-journal-remote-vacuum.service")


# ---------------------------------------------------------------- readiness report


def test_readiness_items_pass(mon: Any) -> None:
    plays = [{
        "name": "Readiness of the exporters and the monitoring",
        "hosts": "all:!outsiders",
        "become": True,
        "gather_facts": True,
        "tasks": [
            {"name": "Exporter checks", "ansible.builtin.include_role": {"name": "prodready.webstack.exporters",
                                                                          "tasks_from": "verify"}},
            {"name": "Monitoring checks", "ansible.builtin.include_role": {"name": "prodready.webstack.monitoring",
                                                                            "tasks_from": "verify"},
             "when": "'monitoring' in group_names"},
            {"name": "Print", "ansible.builtin.debug": {"msg": "READINESS {{ prodready_readiness | to_json }}"}},
            {"name": "All pass", "ansible.builtin.assert": {
                "that": "prodready_readiness | rejectattr('passed') | list | length == 0",
                "fail_msg": "{{ prodready_readiness | rejectattr('passed') | list }}"}},
        ],
    }]
    result = run_play(plays, limit="all")
    assert result.rc == 0, result.output[-4000:]
    for item in ("prometheus-node-exporter answers", "postgres_exporter connects to PostgreSQL", "Every Prometheus target is up",
                 "Alertmanager configuration valid", "systemd-journal-upload ships the journal"):
        assert item in result.output, item


# ---------------------------------------------------------------- web config (check mode) and bad input


def test_web_config_is_wired_in_check_mode(app: Any) -> None:
    before = app.file("/etc/default/prometheus-node-exporter").content_string
    result = run_play(role_play("exporters"), limit=APP, check=True, extra_vars={
        "exporters_web_config_enabled": True, "exporters_web_basic_auth_users": {"prometheus": BCRYPT}})
    assert result.rc == 0, result.output[-3000:]
    assert "--web.config.file=/etc/prometheus/exporters-web.yml" in result.output
    assert f'"prometheus": "{BCRYPT}"' in result.output
    assert result.recap(APP)["changed"] > 0
    assert app.file("/etc/default/prometheus-node-exporter").content_string == before
    assert not app.file("/etc/prometheus/exporters-web.yml").exists


@pytest.mark.parametrize(("bad", "needle"), [
    ({"exporters_postgres_password": "short"}, "exporters_postgres_password"),
    ({"exporters_listen_address": "0.0.0.0"}, "exporters_listen_address"),
    ({"exporters_node_systemd_unit_include": "app .*"}, "exporters_node_systemd_unit_include"),
    ({"exporters_web_config_enabled": True, "exporters_web_basic_auth_users": {"prometheus": "plain"}},
     "exporters_web_basic_auth_users"),
])
def test_exporters_refuse_bad_input(bad: dict[str, Any], needle: str) -> None:
    assert_refused(run_play(role_play("exporters"), limit=APP, extra_vars=bad), APP, needle)


def test_exporters_refuse_a_public_address_nothing_guards() -> None:
    """#19: on a one-NIC cloud host the default-route address is public. monitoring-mon has no firewall of
    its own (hardening does not run there), monitoring-app has the hardening role's default-deny table."""
    public = {"exporters_listen_address": "9.9.9.9"}
    refused = run_play(role_play("exporters"), limit=MON, extra_vars=public)
    assert_refused(refused, MON, "exporters_listen_address (9.9.9.9) is a public address and nothing guards",
                   "exporters_listen_public_allowed")
    preflight = role_play("exporters", tasks_from="preflight")
    for host, extra in [(MON, {"exporters_listen_public_allowed": True}), (APP, {})]:
        checked = run_play(preflight, limit=host, extra_vars={**public, **extra})
        assert checked.rc == 0 and checked.recap(host)["changed"] == 0, checked.output[-3000:]


@pytest.mark.parametrize(("bad", "needle"), [
    ({"monitoring_alert_disk_free_percent": 150}, "monitoring_alert_disk_free_percent"),
    ({"monitoring_retention_time": "30 days"}, "monitoring_retention_time"),
    ({"monitoring_alertmanager_webhook_urls": ["ftp://example.com/hook"]}, "monitoring_alertmanager_webhook_urls"),
    ({"monitoring_prometheus_listen": "0.0.0.0"}, "monitoring_prometheus_listen"),
    ({"monitoring_exporter_jobs": [{"name": "app", "group": "web", "port": 1}]}, "monitoring_exporter_jobs[0]"),
    ({"monitoring_grafana_enabled": True, "monitoring_grafana_admin_password": "CHANGE-ME"}, "monitoring_grafana_admin_password"),
    # Ubuntu 22.04's Alertmanager 0.23 has no telegram_configs (its amtool refuses the file): the
    # platform's version stands in for the facts this Debian host cannot have.
    ({"monitoring_alertmanager_telegram_bot_token": "123456:telegram-bot-token-from-vault",
      "monitoring_alertmanager_telegram_chat_id": -100, "__monitoring_alertmanager_version": "0.23"},
     "monitoring_alertmanager_telegram_bot_token"),
])
def test_monitoring_refuses_bad_input(bad: dict[str, Any], needle: str) -> None:
    assert_refused(run_play(role_play("monitoring"), limit=MON, extra_vars=bad), MON, needle)


def test_grafana_is_wired_up_to_the_network_boundary_in_check_mode(mon: Any) -> None:
    """Grafana's packages cannot be fetched here: in check mode the run passes this role's and
    grafana.grafana's preflight (data source, dashboards dir, admin password) and stops only where
    the grafana role reaches apt.grafana.com (its signing key or its package)."""
    result = run_play(role_play("monitoring"), limit=MON, check=True, extra_vars={
        "monitoring_grafana_enabled": True, "monitoring_grafana_admin_password": "grafana-admin-password-0123"})
    out = result.output
    assert "TASK [grafana.grafana.grafana : Check variable types]" in out, out[-3000:]
    assert "Fail on incorrect variable types in datasource definitions" in out
    failed_task = out[:out.index("fatal: [")].rsplit("TASK [", 1)[-1].split("]", 1)[0] if "fatal: [" in out else ""
    if result.rc == 0:  # a machine that reaches apt.grafana.com gets through
        return
    assert failed_task in ("grafana.grafana.grafana : Add Grafana apt repository", "grafana.grafana.grafana : Install Grafana"), \
        out[-3000:]
    assert "Could not fetch signed_by key" in out or "No package matching 'grafana'" in out, out[-3000:]
    assert not mon.package("grafana").is_installed
