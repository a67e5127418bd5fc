"""Live state of prodready.webstack.postgresql, and its refusal of bad input.

Expectations come from the host, not its name: the PostgreSQL major from its platform (/etc/os-release;
Debian 12: 15, Debian 13: 17, Ubuntu 22.04: 14, Ubuntu 24.04: 16) unless postgresql_version names one,
checked against the installed package; the pgtune figures from the tuning inputs and PgBouncer from
postgresql_pgbouncer_enabled as the scenario's inventory gives them to the host (molecule.yml: 4096 MiB /
2 cores direct, or 2048 MiB / 4 cores behind PgBouncer), else the role's defaults.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from conftest import (
    all_items_pass,
    assert_readiness,
    assert_role_refuses,
    checked_once,
    host_setting,
    os_release,
    platform,
    role_play,
    run_play,
    unit_journal,
    upstream_version,
)

FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "postgresql"
APP_PASSWORD = (FIXTURES / "app.password").read_text().strip()
REPORT_PASSWORD = (FIXTURES / "report.password").read_text().strip()

# The major each platform ships (postgresql_version empty).
PG_VERSIONS = {"Debian-12": "15", "Debian-13": "17", "Ubuntu-22": "14", "Ubuntu-24": "16"}
# pgtune's values for the tuning inputs (postgresql_tune_memory_mb, postgresql_tune_cpus) molecule.yml gives
# the hosts (plugins/filter/pgtune.py, checked in tests/unit/test_pgtune.py).
TUNED = {
    (4096, 2): {"shared_buffers": "1GB", "effective_cache_size": "3GB", "maintenance_work_mem": "256MB",
                 "work_mem": "5041kB", "max_connections": "200", "wal_buffers": "16MB", "max_worker_processes": "8"},
    (2048, 4): {"shared_buffers": "512MB", "effective_cache_size": "1536MB", "maintenance_work_mem": "128MB",
                 "work_mem": "4MB", "max_connections": "200", "wal_buffers": "16MB", "max_worker_processes": "4",
                 "max_parallel_workers_per_gather": "2", "max_parallel_workers": "4",
                 "max_parallel_maintenance_workers": "2"},
}
COMMON = {"min_wal_size": "1GB", "max_wal_size": "4GB", "checkpoint_completion_target": "0.9",
          "random_page_cost": "1.1", "effective_io_concurrency": "200", "huge_pages": "off", "jit": "off",
          "password_encryption": "scram-sha-256",
          "shared_preload_libraries": "pg_stat_statements", "log_min_duration_statement": "500ms", "log_lock_waits": "on"}


def setting(host: Any, name: str) -> Any:
    return host_setting(host, "postgresql", name)


def version(host: Any) -> str:
    """postgresql_version, or the platform's own major when it is empty (the role's rule)."""
    configured = str(setting(host, "postgresql_version") or "")
    return configured or PG_VERSIONS[platform(host)]


def tuned(host: Any) -> dict[str, str]:
    """pgtune's figures for this host's tuning inputs; wal_compression is lz4 from PostgreSQL 15, on before."""
    inputs = (setting(host, "postgresql_tune_memory_mb"), setting(host, "postgresql_tune_cpus"))
    key = (int(inputs[0]), int(inputs[1])) if all(str(x).isdigit() for x in inputs) else None
    if key not in TUNED:
        pytest.fail(f"no pgtune figures in TUNED for postgresql_tune_memory_mb, postgresql_tune_cpus = {inputs}: "
                    "fix them in molecule.yml or add the figures")
    return TUNED[key] | {"wal_compression": "lz4" if int(version(host)) >= 15 else "on"}


def pgbouncer_enabled(host: Any) -> bool:
    return bool(setting(host, "postgresql_pgbouncer_enabled"))


def own_ip(host: Any) -> str:
    return host.check_output("hostname -I").split()[0]


def sql(host: Any, query: str, db: str = "postgres") -> str:
    """A query as the postgres superuser over the socket (peer)."""
    return host.check_output(f"cd /tmp && runuser -u postgres -- psql -X -At -d {db} -c {shlex.quote(query)}")


def login(host: Any, user: str, password: str, query: str = "SELECT current_user", addr: str = "127.0.0.1",
          port: int = 5432, db: str = "app") -> Any:
    """A password login over TCP, the way the application connects."""
    return host.run(f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=5 psql -X -At -h {addr} -p {port} "
                    f"-U {user} -d {db} -c {shlex.quote(query)}")


def test_server_runs_the_expected_major(host: Any) -> None:
    unit = f"postgresql@{version(host)}-main"
    package = host.package(f"postgresql-{version(host)}")
    assert package.is_installed, f"postgresql-{version(host)} ({platform(host)})"
    assert upstream_version(package.version).startswith(f"{version(host)}."), package.version
    assert host.service(unit).is_running, unit_journal(host, unit)
    assert host.service(unit).is_enabled
    assert sql(host, "SHOW server_version_num")[:2] == version(host)
    assert sql(host, "SELECT pg_encoding_to_char(encoding) || ' ' || datcollate FROM pg_database WHERE datname = 'app'") \
        == "UTF8 C.UTF-8"
    assert sql(host, "SHOW data_checksums") == "on"


def test_settings_come_from_the_drop_in_with_pgtune_values(host: Any) -> None:
    expected = tuned(host) | COMMON
    live = {name: sql(host, f"SHOW {name}") for name in expected}
    assert live == expected
    source = sql(host, "SELECT sourcefile FROM pg_settings WHERE name = 'shared_buffers'")
    assert source == f"/etc/postgresql/{version(host)}/main/conf.d/90-prodready.conf"
    assert sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    assert host.file(f"/var/lib/postgresql/{version(host)}/main/postgresql.auto.conf").content_string.count("=") == 0


def test_listens_on_localhost_and_the_private_address_only(host: Any) -> None:
    assert sql(host, "SHOW listen_addresses") == f"localhost,{own_ip(host)}"
    pg_port = int(setting(host, "postgresql_port"))
    assert host.socket(f"tcp://{own_ip(host)}:{pg_port}").is_listening
    assert not host.socket(f"tcp://0.0.0.0:{pg_port}").is_listening


def test_app_logs_in_over_tcp_with_its_password(host: Any) -> None:
    result = login(host, "app", APP_PASSWORD)
    assert result.rc == 0 and result.stdout.strip() == "app", result.stderr


def test_wrong_password_is_refused(host: Any) -> None:
    result = login(host, "app", "not-the-password-at-all")
    assert result.rc != 0 and 'password authentication failed for user "app"' in result.stderr, result.stderr


def test_pg_hba_allows_listed_sources_only(host: Any) -> None:
    """From the container's own address: app is listed for it, report is not (loopback only)."""
    ip = own_ip(host)
    allowed = login(host, "app", APP_PASSWORD, addr=ip)
    assert allowed.rc == 0 and allowed.stdout.strip() == "app", allowed.stderr
    refused = login(host, "report", REPORT_PASSWORD, addr=ip)
    assert refused.rc != 0 and f'no pg_hba.conf entry for host "{ip}", user "report"' in refused.stderr, refused.stderr
    # report may use app over loopback (connect_users); PUBLIC lost CONNECT on app.
    assert login(host, "report", REPORT_PASSWORD).rc == 0
    acl = sql(host, "SELECT datacl::text FROM pg_database WHERE datname = 'app'")
    assert "report=c/" in acl and "{=" not in acl and ",=" not in acl, acl


def test_no_trust_and_scram_everywhere(host: Any) -> None:
    assert sql(host, "SELECT count(*) FROM pg_hba_file_rules WHERE auth_method = 'trust' OR error IS NOT NULL") == "0"
    assert sql(host, "SELECT string_agg(DISTINCT auth_method, ',' ORDER BY auth_method) FROM pg_hba_file_rules") \
        == "peer,reject,scram-sha-256"
    prefixes = sql(host, "SELECT string_agg(rolname || ':' || left(rolpassword, 14), ',' ORDER BY rolname) "
                         "FROM pg_authid WHERE rolname IN ('app', 'report')")
    assert prefixes == "app:SCRAM-SHA-256$,report:SCRAM-SHA-256$"
    assert host.file(f"/etc/postgresql/{version(host)}/main/pg_hba.conf").mode == 0o640


def test_timeouts_are_set_for_the_app_role(host: Any) -> None:
    query = ("SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') || ' ' "
             "|| current_setting('idle_in_transaction_session_timeout')")
    assert login(host, "app", APP_PASSWORD, query).stdout.strip() == "30s 10s 1min"
    assert login(host, "report", REPORT_PASSWORD, "SHOW statement_timeout").stdout.strip() == "2min"


def test_slow_statements_are_logged_and_counted(host: Any) -> None:
    log = f"/var/log/postgresql/postgresql-{version(host)}-main.log"
    assert login(host, "app", APP_PASSWORD, "SELECT pg_sleep(0.6) AS prodready_slow_probe").rc == 0
    assert "prodready_slow_probe" in host.check_output(f"grep -a 'duration: ' {log} | tail -n 5")
    assert sql(host, "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'", db="app") == "1"
    calls = sql(host, "SELECT sum(calls) FROM pg_stat_statements WHERE query LIKE '%prodready_slow_probe%'", db="app")
    assert int(calls or 0) >= 1


def test_database_url_works(host: Any) -> None:
    """The fact the app role will use; through PgBouncer where postgresql_pgbouncer_enabled."""
    url = host.file("/root/.database_url").content_string.strip()
    port = int(setting(host, "postgresql_pgbouncer_port" if pgbouncer_enabled(host) else "postgresql_port"))
    assert url.startswith("postgresql://app:") and url.endswith(f"@{own_ip(host)}:{port}/app")
    result = host.run(f"psql -X -At {shlex.quote(url)} -c 'SELECT current_user'")
    assert result.rc == 0 and result.stdout.strip() == "app", result.stderr


def test_pgbouncer_pools_with_scram(host: Any) -> None:
    if not pgbouncer_enabled(host):
        assert not host.package("pgbouncer").is_installed
        pytest.skip("PgBouncer is not enabled on this host (postgresql_pgbouncer_enabled)")
    bouncer = int(setting(host, "postgresql_pgbouncer_port"))
    assert host.service("pgbouncer").is_running, unit_journal(host, "pgbouncer")
    ini = host.file("/etc/pgbouncer/pgbouncer.ini").content_string
    assert "pool_mode = transaction" in ini and "auth_type = hba" in ini
    userlist = host.file("/etc/pgbouncer/userlist.txt")
    assert userlist.mode == 0o640 and '"app" "SCRAM-SHA-256$' in userlist.content_string
    assert APP_PASSWORD not in userlist.content_string
    through = login(host, "app", APP_PASSWORD, "SHOW statement_timeout", port=bouncer)
    assert through.rc == 0 and through.stdout.strip() == "30s", through.stderr
    wrong = login(host, "app", "not-the-password-at-all", port=bouncer)
    assert wrong.rc != 0 and "authentication failed" in wrong.stderr, wrong.stderr
    refused = login(host, "report", REPORT_PASSWORD, addr=own_ip(host), port=bouncer)
    assert refused.rc != 0, "PgBouncer let report in from a source only app is listed for"


def start_time(host: Any) -> str:
    return sql(host, "SELECT pg_postmaster_start_time()")


def test_a_routine_run_never_restarts_the_database(host: Any) -> None:
    """A reload-only change is applied without restart; a restart-only one waits for a run that allows it.
    #20: postgresql_allow_restart defaulted to true, so a routine run restarted production PostgreSQL."""
    name = checked_once(host, "restart handling is platform-independent")
    before = start_time(host)
    settings = {"postgresql_log_min_duration_statement": "250ms", "postgresql_settings_overrides": {"max_connections": 150}}
    changed = run_play(role_play("postgresql"), limit=name, extra_vars=settings)
    try:
        assert changed.rc == 0, changed.output[-3000:]
        assert sql(host, "SHOW log_min_duration_statement") == "250ms"
        assert start_time(host) == before
        assert sql(host, "SELECT string_agg(name, ',') FROM pg_settings WHERE pending_restart") == "max_connections"
        assert "RESTART PENDING" in changed.output and "-e postgresql_allow_restart=true" in changed.output
        allowed = run_play(role_play("postgresql"), limit=name, extra_vars={**settings, "postgresql_allow_restart": True})
        assert allowed.rc == 0, allowed.output[-3000:]
        assert sql(host, "SHOW max_connections") == "150" and start_time(host) != before
    finally:
        restored = run_play(role_play("postgresql"), limit=name, extra_vars={"postgresql_allow_restart": True})
    assert restored.rc == 0 and restored.recap(name)["failed"] == 0, restored.output[-3000:]
    assert sql(host, "SHOW log_min_duration_statement") == "500ms"
    assert sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


def test_file_written_by_an_interrupted_run_is_reloaded(host: Any) -> None:
    """A run killed after writing pg_hba.conf but before its reload handler: the report names the file,
    the next run reloads (the file itself is unchanged, so no handler would) and the item passes again."""
    name = checked_once(host, "reload handling is platform-independent")
    loaded = sql(host, "SELECT pg_conf_load_time()")
    host.run(f"touch /etc/postgresql/{version(host)}/main/pg_hba.conf")
    stale = assert_readiness(host, "postgresql", ["prodready_readiness | rejectattr('passed') | list | length == 1"], show=True)
    assert "written after the last reload" in stale.output and "pg_hba.conf" in stale.output
    healed = run_play(role_play("postgresql"), limit=name)
    assert healed.rc == 0 and healed.recap(name)["changed"] == 1, healed.output[-3000:]
    assert "Reload PostgreSQL for files an interrupted run wrote" in healed.output
    assert sql(host, "SELECT pg_conf_load_time()") != loaded
    assert_readiness(host, "postgresql", all_items_pass(8))


def test_readiness_items_pass(host: Any) -> None:
    """tasks/verify.yml, as playbooks/verify.yml runs it, records eight passing items."""
    assert_readiness(host, "postgresql", all_items_pass(8))


def _facts(distribution: str = "Debian", major: str = "12") -> dict[str, Any]:
    return {"distribution": distribution, "distribution_major_version": major, "distribution_release": "bookworm",
            "memtotal_mb": 4096, "processor_vcpus": 2, "default_ipv4": {"address": "172.17.0.2"},
            "virtualization_role": "guest", "virtualization_type": "docker"}


def _user(password: str | None) -> dict[str, Any]:
    return {"postgresql_users": [{"name": "app"} | ({"password": password} if password is not None else {})]}


BAD_INPUT = [
    pytest.param(_user("short-password"), ["postgresql_users: app has no password, one shorter than",
                                           "postgresql_min_password_length (16"], id="weak-password"),
    pytest.param(_user(None), ["postgresql_users: app has no password"], id="missing-password"),
    pytest.param(_user("CHANGE-ME-vault-placeholder-value"), ["postgresql_users: app", "vault.example.yml placeholder"],
                 id="placeholder-password"),
    pytest.param({"postgresql_databases": [{"name": "app", "extensions": ["postgis_fake"]}]},
                 ["postgresql_databases[0] (app)", "unknown: postgis_fake"], id="unknown-extension"),
    pytest.param({"postgresql_hba_entries": [{"sources": ["10.0.0.0/33"]}]},
                 ["postgresql_hba_entries[0].sources", "10.0.0.0/33"], id="bad-cidr"),
    pytest.param({"postgresql_hba_entries": [{"sources": ["10.0.1.0/24", "::/0"]}]},
                 ["postgresql_hba_entries[0].sources lists ::/0, which is the whole Internet"], id="world-open-hba"),
    pytest.param({"postgresql_hba_entries": [{"sources": ["10.0.0.0/8"], "method": "trust"}]},
                 ["method", "trust", "postgresql_hba_entries"], id="trust-method"),
    pytest.param({"postgresql_version": "16"}, ["postgresql_version=16", "postgresql_pgdg_enabled"], id="version-without-pgdg"),
    pytest.param({"postgresql_pgdg_enabled": True}, ["postgresql_version=(empty)"], id="pgdg-without-version"),
    pytest.param({"postgresql_listen_addresses": ["db.example.com"]},
                 ["postgresql_listen_addresses", "db.example.com"], id="listen-name"),
    pytest.param({"postgresql_tune_profile": "webscale"}, ["postgresql_tune_profile", "webscale"], id="profile-choice"),
    pytest.param({"ansible_facts": _facts("Ubuntu", "20")}, ["Unsupported platform Ubuntu-20"], id="platform"),
]


@pytest.mark.parametrize("bad_vars, needles", BAD_INPUT)
def test_bad_input_stops_before_any_change(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "postgresql", bad_vars, needles)


def test_pgdg_repository_in_check_mode(host: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """PGDG cannot be reached here: check mode shows the repository the role would add, signed by the shipped key."""
    name = checked_once(host)
    assert host.run("apt-get install -y -qq python3-debian").rc == 0  # deb822_repository cannot install it in check mode
    monkeypatch.setenv("ANSIBLE_VERBOSITY", "1")  # print the module's result: the rendered repository
    result = run_play(role_play("postgresql", tasks_from="pgdg"), limit=name, check=True,
                      extra_vars={"postgresql_pgdg_enabled": True, "postgresql_version": "16"})
    assert result.rc == 0, result.output[-3000:]
    suite = f"{os_release(host)['VERSION_CODENAME']}-pgdg"  # ansible_facts.distribution_release
    for needle in (f"Suites: {suite}", "URIs: https://apt.postgresql.org/pub/repos/apt", "BEGIN PGP PUBLIC KEY BLOCK"):
        assert needle in result.output, result.output[-3000:]
    assert result.recap(name)["changed"] >= 1
    assert not host.file("/etc/apt/sources.list.d/pgdg.sources").exists
