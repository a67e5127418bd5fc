"""Live behaviour of prodready.webstack.backup on top of prodready.webstack.postgresql.

Every host runs the PostgreSQL its platform ships (/etc/os-release; Debian 12: 15, Debian 13: 17, Ubuntu 22.04: 14,
Ubuntu 24.04: 16) unless postgresql_version names one, backs up the `app` database and /srv/app/media and copies
each run to a local restic repository (/srv/restic-repo). See molecule.yml.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import PROJECT, assert_refused, assert_role_refuses, checked_once, host_setting, platform, run_play, unit_journal

BACKUP_DIR = "/var/backups/prodready"
SERVICE = "prodready-backup.service"
RESTORE_TEST = "prodready-backup-restore-test.service"
SCRIPT = "/usr/local/sbin/prodready-backup"
LOCK = "/run/lock/prodready-backup.lock"
METRICS = "/var/lib/prometheus/node-exporter/prodready_backup.prom"
RESTORE_METRICS = "/var/lib/prometheus/node-exporter/prodready_backup_restore_test.prom"
RESTIC = "restic -r /srv/restic-repo --password-file /etc/prodready/backup/restic.password --no-cache"
RESTIC_PASSWORD = (PROJECT / "tests" / "fixtures" / "backup" / "restic.password").read_text().strip()
RESTORE_PLAYBOOK: Path = PROJECT / "playbooks" / "restore.yml"
# The PostgreSQL major each platform ships (postgresql_version empty).
PG_VERSIONS = {"Debian-12": "15", "Debian-13": "17", "Ubuntu-22": "14", "Ubuntu-24": "16"}


def pg_unit(host: Any) -> str:
    """The cluster's unit: postgresql_version, or the platform's own major when it is empty (the role's rule)."""
    major = str(host_setting(host, "postgresql", "postgresql_version") or "") or PG_VERSIONS[platform(host)]
    unit = f"postgresql@{major}-main"
    assert host.service(unit).is_running, f"{unit} ({platform(host)}) is not running:\n{unit_journal(host, unit)}"
    return unit


def sql(host: Any, query: str, db: str = "app") -> str:
    return host.check_output(f"cd /tmp && runuser -u postgres -- psql -X -At -d {db} -c {shlex.quote(query)}")


def metrics(host: Any, path: str = METRICS) -> dict[str, float]:
    lines = host.file(path).content_string.splitlines()
    return {name: float(value) for name, value in (line.split() for line in lines if line and not line.startswith("#"))}


def latest(host: Any) -> str:
    return host.check_output(f"readlink {BACKUP_DIR}/latest")


def runs(host: Any) -> set[str]:
    out = host.check_output(f"find {BACKUP_DIR} -mindepth 1 -maxdepth 1 -type d -name '20*' -printf '%f\\n'")
    return set(out.split())


def backup(host: Any) -> Any:
    """Start the backup service and wait for it (a oneshot unit: systemctl start returns when it ends)."""
    time.sleep(1.1)  # run directories are named by the second
    return host.run(f"systemctl start {SERVICE}")


def test_timers_are_scheduled(host: Any) -> None:
    timers = host.check_output("systemctl list-timers --all --no-legend --no-pager")
    for timer in ("prodready-backup.timer", "prodready-backup-restore-test.timer"):
        line = next((x for x in timers.splitlines() if timer in x), "")
        assert line and not line.startswith("n/a"), f"{timer} not scheduled:\n{timers}"
        assert host.service(timer).is_enabled
    assert "Persistent=true" in host.file("/etc/systemd/system/prodready-backup.timer").content_string


def test_a_run_writes_a_verified_dump_and_metrics(host: Any) -> None:
    before = metrics(host)["prodready_backup_last_run_timestamp_seconds"] if host.file(METRICS).exists else 0
    result = backup(host)
    assert result.rc == 0, unit_journal(host, SERVICE)
    run = f"{BACKUP_DIR}/{latest(host)}"
    listing = host.run(f"pg_restore --list {run}/app.dump")
    assert listing.rc == 0 and "TABLE DATA public items" in listing.stdout, listing.stderr
    assert "CREATE ROLE app" in host.file(f"{run}/globals.sql").content_string
    assert host.run(f"cd {run} && sha256sum --quiet -c SHA256SUMS").rc == 0
    assert sorted(host.file(run).listdir()) == ["SHA256SUMS", "app.dump", "files.tar.zst", "globals.sql"]
    assert "srv/app/media/logo.txt" in host.check_output(f"tar --zstd -tf {run}/files.tar.zst")
    assert host.file(BACKUP_DIR).mode == 0o700
    m = metrics(host)
    assert m["prodready_backup_last_status"] == 1
    assert m["prodready_backup_last_run_timestamp_seconds"] > before
    assert m["prodready_backup_last_success_timestamp_seconds"] == m["prodready_backup_last_run_timestamp_seconds"]
    assert m["prodready_backup_size_bytes"] > 1000
    assert "prodready_backup_duration_seconds" in m
    assert host.file(METRICS).mode == 0o644
    assert "OK" in unit_journal(host, SERVICE, 5)


def test_a_file_changing_while_archived_keeps_the_verified_run(host: Any) -> None:
    """#20: tar exits 1 when a file changes while it reads it (an upload in progress); that failed the whole
    run and discarded the verified dumps. A bounded writer appends to a 32 MiB file during the run."""
    growing = "/srv/app/media/upload-in-progress.bin"
    host.run(f"head -c 33554432 /dev/zero > {growing}")
    writer = ("systemd-run --unit=prodready-test-writer --quiet --collect timeout 60 "
              f"sh -c 'while :; do head -c 4096 /dev/urandom >> {growing}; done'")
    try:
        for _ in range(3):  # tar must be reading the file while it grows: a run or two may miss it
            assert host.run(writer).rc == 0
            result = backup(host)
            host.run("systemctl stop prodready-test-writer")
            if "files changed while they were archived" in unit_journal(host, SERVICE, 20):
                break
        assert result.rc == 0, unit_journal(host, SERVICE)
        assert "WARNING: files changed while they were archived (tar exit 1)" in unit_journal(host, SERVICE, 20)
        run = latest(host)
        assert host.run(f"cd {BACKUP_DIR}/{run} && sha256sum --quiet -c SHA256SUMS && pg_restore --list app.dump").rc == 0
        m = metrics(host)
        assert (m["prodready_backup_last_status"], m["prodready_backup_files_changed"]) == (1, 1)
    finally:
        host.run(f"systemctl stop prodready-test-writer; rm -f {growing}")
    assert backup(host).rc == 0
    assert metrics(host)["prodready_backup_files_changed"] == 0


def test_backup_playbook_runs_now_and_fetches_the_run(host: Any, tmp_path: Path) -> None:
    name = host.backend.hostname
    # A host whose restore test never ran fails the readiness item (#16 item 9: it passed with "never run")...
    host.run(f"rm -f {RESTORE_METRICS}")
    never = run_play(READINESS_PLAY, limit=name)
    assert never.rc != 0 and "never run (playbooks/backup.yml runs the first one)" in never.output, never.output[-3000:]
    time.sleep(1.1)
    result = run_play(PROJECT / "playbooks" / "backup.yml", limit=name,
                      extra_vars={"backup_fetch": True, "backup_fetch_dir": str(tmp_path)})
    assert result.rc == 0, result.output[-3000:]
    run = latest(host)
    assert f"Backup OK on {name}: {BACKUP_DIR}/{run}" in result.output
    # ...and backup.yml runs its first one (backup_restore_test_on_run: first), not again on the next run.
    assert f"Restore test OK on {name}" in result.output, result.output[-3000:]
    assert metrics(host, RESTORE_METRICS)["prodready_backup_restore_test_last_status"] == 1
    fetched = tmp_path / name / run
    assert sorted(p.name for p in fetched.iterdir()) == ["SHA256SUMS", "app.dump", "files.tar.zst", "globals.sql"]
    # The dumps hold every row: the directories are the controller user's only (#20: were 0755).
    assert {str(d.relative_to(tmp_path)): oct(d.stat().st_mode & 0o777) for d in (tmp_path / name, fetched)} == {
        name: "0o700", f"{name}/{run}": "0o700"}
    sums = dict(reversed(line.split()) for line in (fetched / "SHA256SUMS").read_text().splitlines())
    assert sums["app.dump"] == hashlib.sha256((fetched / "app.dump").read_bytes()).hexdigest()


def test_backup_playbook_runs_the_restore_test_only_first(host: Any) -> None:
    name = host.backend.hostname
    time.sleep(1.1)
    again = run_play(PROJECT / "playbooks" / "backup.yml", limit=name)
    assert again.rc == 0, again.output[-3000:]
    assert "Restore test OK" not in again.output and "Backup OK on" in again.output


def test_restore_playbook_brings_deleted_rows_back(host: Any) -> None:
    name = host.backend.hostname
    sql(host, "INSERT INTO items (name) SELECT 'keep-me-' || g FROM generate_series(1, 5) AS g")
    assert backup(host).rc == 0, unit_journal(host, SERVICE)
    run = latest(host)
    sql(host, "DELETE FROM items WHERE name LIKE 'keep-me-%'")
    assert sql(host, "SELECT count(*) FROM items WHERE name LIKE 'keep-me-%'") == "0"
    result = run_play(RESTORE_PLAYBOOK, limit=name, extra_vars={"backup_restore_confirm": "app", "backup_restore_from": run})
    assert result.rc == 0, result.output[-3000:]
    assert f"Restored app on {name}" in result.output
    assert sql(host, "SELECT count(*) FROM items WHERE name LIKE 'keep-me-%'") == "5"
    # The app role logs in as before (ownership restored), and a safety dump was taken first.
    assert sql(host, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'") == "app"
    assert host.check_output(f"ls {BACKUP_DIR}/safety").count(".dump") >= 1


APP_PASSWORD = (PROJECT / "tests" / "fixtures" / "postgresql" / "app.password").read_text().strip()


def test_a_restore_while_the_app_writes_loses_no_acknowledged_write(host: Any, tmp_path: Path) -> None:
    """#20 item 2: the restore overwrote the live database while the app kept writing, so writes after
    the safety dump were acknowledged and then lost. Now the database is fenced before the safety dump:
    every write the app saw succeed is in the safety dump, the later ones fail (the app sees errors),
    and the database is open again afterwards."""
    name = host.backend.hostname
    assert backup(host).rc == 0, unit_journal(host, SERVICE)
    run = latest(host)
    # A writer as the app role over TCP: one INSERT per psql, its id logged only when acknowledged.
    writer = (f"i=0; while [ $i -lt 600 ]; do i=$((i + 1)); PGPASSWORD={shlex.quote(APP_PASSWORD)} PGCONNECT_TIMEOUT=2 "
              "psql -X -qAt -h 127.0.0.1 -U app -d app -c \"INSERT INTO items (name) VALUES ('writer-$i')\" "
              ">/dev/null 2>&1 && echo writer-$i >> /tmp/acked; sleep 0.02; done")
    host.run("rm -f /tmp/acked")
    host.run(f"systemd-run --unit=prodready-test-writer --collect sh -c {shlex.quote(writer)}")
    try:
        time.sleep(1)
        result = run_play(RESTORE_PLAYBOOK, limit=name, extra_vars={"backup_restore_confirm": "app", "backup_restore_from": run})
        time.sleep(1)
    finally:
        host.run("systemctl stop prodready-test-writer")
    assert result.rc == 0, result.output[-3000:]
    safety = re.search(r"safety dump (\S+\.dump)", result.output)
    assert safety, result.output[-2000:]
    acked = set(host.check_output("cat /tmp/acked").split())
    assert len(acked) > 10, "the writer did not write before the restore"
    # What the safety dump holds, and what the database holds now (the restored run plus later writes).
    sql(host, "DROP DATABASE IF EXISTS safety_check", db="postgres")
    sql(host, "CREATE DATABASE safety_check", db="postgres")
    try:
        host.check_output(f"cd /tmp && runuser -u postgres -- pg_restore --no-owner -d safety_check < {safety.group(1)}")
        kept = set(sql(host, "SELECT name FROM items WHERE name LIKE 'writer-%'", db="safety_check").split())
    finally:
        sql(host, "DROP DATABASE IF EXISTS safety_check", db="postgres")
    now = set(sql(host, "SELECT name FROM items WHERE name LIKE 'writer-%'").split())
    assert acked <= kept | now, f"acknowledged but lost: {sorted(acked - kept - now)[:10]}"
    assert sql(host, "SELECT datconnlimit FROM pg_database WHERE datname = 'app'", db="postgres") == "-1"
    assert not host.file(f"{BACKUP_DIR}/safety/app.fence").exists


def test_restore_without_confirmation_is_refused(host: Any) -> None:
    name = checked_once(host, "input validation is platform-independent")
    result = run_play(RESTORE_PLAYBOOK, limit=name)
    assert_refused(result, name, "Refusing to restore", "backup_restore_confirm=app")
    wrong = run_play(RESTORE_PLAYBOOK, limit=name, extra_vars={"backup_restore_confirm": "postgres"})
    assert_refused(wrong, name, "Refusing to restore", "backup_restore_confirm was postgres")


def test_restore_test_restores_into_a_scratch_database(host: Any) -> None:
    result = host.run(f"systemctl start {RESTORE_TEST}")
    assert result.rc == 0, unit_journal(host, RESTORE_TEST)
    m = metrics(host, RESTORE_METRICS)
    assert m["prodready_backup_restore_test_last_status"] == 1
    assert m["prodready_backup_restore_test_last_success_timestamp_seconds"] > 0
    assert sql(host, "SELECT count(*) FROM pg_database WHERE datname = 'app_restore_test'", db="postgres") == "0"
    assert "public.items has rows" in unit_journal(host, RESTORE_TEST, 10)


# Code the app's role can plant in its own database: an index expression that a restore evaluates for
# every row. Run by a superuser, it could do anything postgres can; here it refuses, which shows who ran it.
PLANTED = """SET ROLE app;
CREATE FUNCTION public.planted(x integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    RAISE EXCEPTION 'planted code ran as superuser %', current_user;
  END IF;
  RETURN x;
END $$;
CREATE INDEX planted_idx ON public.items (public.planted(length(name)));"""


def test_the_restore_test_runs_the_dumps_code_without_superuser_rights(host: Any) -> None:
    """#19: the weekly restore test replayed the app-owned dump as postgres, so the planted index
    expression ran as the superuser (the test failed: "planted code ran as superuser postgres")."""
    sql(host, PLANTED)
    try:
        assert backup(host).rc == 0, unit_journal(host, SERVICE)
        result = host.run(f"systemctl start {RESTORE_TEST}")
        journal = unit_journal(host, RESTORE_TEST, 20)
        assert result.rc == 0, journal
        assert "planted code ran as superuser" not in journal
        assert sql(host, "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = 'prodready_restore_test'",
                   db="postgres") == "f|f"
    finally:
        sql(host, "DROP INDEX IF EXISTS public.planted_idx; DROP FUNCTION IF EXISTS public.planted(integer)")
        assert backup(host).rc == 0, unit_journal(host, SERVICE)


def test_retention_keeps_the_newest_of_each_day_week_and_month(host: Any) -> None:
    """keep daily 2, weekly 2, monthly 3 (molecule.yml): today's new run, 2020-03-10T010000Z (the newest of its
    day, ISO week and month) and 2020-02-15T010000Z (the newest of its month) survive."""
    fakes = ["2020-03-10T010000Z", "2020-03-10T000000Z", "2020-03-09T010000Z", "2020-03-02T010000Z",
             "2020-02-15T010000Z", "2020-01-15T010000Z", "2019-12-15T010000Z"]
    host.check_output(" && ".join(f"mkdir -p {BACKUP_DIR}/{d} && touch {BACKUP_DIR}/{d}/app.dump" for d in fakes)
                      + f" && mkdir -p {BACKUP_DIR}/.partial-2020-01-01T000000Z")
    assert backup(host).rc == 0, unit_journal(host, SERVICE)
    assert runs(host) == {latest(host), "2020-03-10T010000Z", "2020-02-15T010000Z"}
    assert not host.file(f"{BACKUP_DIR}/.partial-2020-01-01T000000Z").exists
    host.check_output(f"rm -rf {BACKUP_DIR}/2020-03-10T010000Z {BACKUP_DIR}/2020-02-15T010000Z")


def test_a_second_run_is_refused_while_one_holds_the_lock(host: Any) -> None:
    host.check_output(f"systemd-run --unit=hold-backup-lock --collect flock {LOCK} sleep 60")
    try:
        for _ in range(50):
            if host.run(f"flock -n {LOCK} true").rc != 0:
                break
            time.sleep(0.1)
        result = host.run(SCRIPT)
        assert result.rc == 75, result.stdout + result.stderr
        assert f"another backup run holds {LOCK}" in result.stderr
        assert host.run(f"systemctl start {SERVICE}").rc != 0
    finally:
        host.run("systemctl stop hold-backup-lock")
    assert backup(host).rc == 0, unit_journal(host, SERVICE)


def test_a_failed_run_is_recorded_and_latest_stays(host: Any) -> None:
    good = latest(host)
    success_before = metrics(host)["prodready_backup_last_success_timestamp_seconds"]
    unit = pg_unit(host)
    host.check_output(f"systemctl stop {unit}")
    try:
        result = backup(host)
        assert result.rc != 0
        m = metrics(host)
        assert m["prodready_backup_last_status"] == 0
        assert m["prodready_backup_last_success_timestamp_seconds"] == success_before
        assert m["prodready_backup_last_run_timestamp_seconds"] > success_before
        assert latest(host) == good
        assert host.check_output(f"find {BACKUP_DIR} -maxdepth 1 -name '.partial-*'") == ""
        journal = unit_journal(host, SERVICE, 20)
        assert "pg_dump of app failed" in journal and "FAILED" in journal, journal
    finally:
        host.check_output(f"systemctl start {unit}")
    assert backup(host).rc == 0, unit_journal(host, SERVICE)
    assert metrics(host)["prodready_backup_last_status"] == 1


def test_restic_snapshot_restores_the_dump(host: Any) -> None:
    run = latest(host)
    snapshots = json.loads(host.check_output(f"{RESTIC} snapshots --json"))
    paths = [path for snapshot in snapshots for path in snapshot["paths"]]
    assert f"{BACKUP_DIR}/{run}" in paths, paths
    host.check_output(f"rm -rf /tmp/restic-out && {RESTIC} restore latest --path {BACKUP_DIR}/{run} --target /tmp/restic-out "
                      f"|| {RESTIC} restore latest --target /tmp/restic-out")
    restored = host.check_output(f"find /tmp/restic-out -name app.dump -path '*{run}*'")
    assert restored, host.check_output("find /tmp/restic-out")
    assert host.check_output(f"sha256sum < {restored}").split()[0] == \
        host.check_output(f"sha256sum < {BACKUP_DIR}/{run}/app.dump").split()[0]
    assert host.run(f"pg_restore --list {restored}").rc == 0
    assert host.file("/etc/prodready/backup/restic.password").mode == 0o600
    assert RESTIC_PASSWORD not in unit_journal(host, SERVICE, 200)


READINESS_PLAY = [{
    "name": "Backup readiness",
    "hosts": "all",
    "become": True,
    "gather_facts": False,
    "tasks": [
        {"name": "Measure", "ansible.builtin.include_role": {"name": "prodready.webstack.backup", "tasks_from": "verify"}},
        {"name": "Show", "ansible.builtin.debug": {"msg": "{{ prodready_readiness | to_json }}"}},
        {"name": "All passed", "ansible.builtin.assert": {
            "that": "prodready_readiness | rejectattr('passed') | list | length == 0"}},
    ],
}]


def test_readiness_items_pass(host: Any) -> None:
    result = run_play(READINESS_PLAY, limit=host.backend.hostname)
    assert result.rc == 0, result.output[-3000:]
    for item in ("Backup scheduled", "Last successful backup recent", "Latest dump readable by pg_restore --list",
                 "Restore test scheduled and passing"):
        assert item in result.output


@pytest.mark.parametrize(("bad_vars", "needles"), [
    ({"backup_keep_daily": 0}, ["backup_keep_daily must be a positive integer"]),
    ({"backup_keep_monthly": -3, "backup_keep_weekly": 0}, ["backup_keep_weekly, backup_keep_monthly"]),
    ({"backup_dir": "var/backups"}, ["backup_dir (var/backups) must be an absolute directory"]),
    ({"backup_dir": "/"}, ["backup_dir (/) must be an absolute directory"]),
    ({"backup_schedule": "every other tuesday"}, ["backup_schedule: not a valid systemd OnCalendar expression"]),
    ({"backup_restic_password": ""}, ["backup_restic_password of at least 16 characters", "password length 0"]),
    ({"backup_restic_password": "short-pass"}, ["backup_restic_password of at least 16 characters", "password length 10"]),
    ({"backup_schedule_type": "anacron"}, ["backup_schedule_type"]),
    ({"backup_restore_test_tables": [{"database": "nope", "table": "items"}]}, ["backup_restore_test_tables[0]"]),
])
def test_bad_input_is_refused(host: Any, bad_vars: dict[str, Any], needles: list[str]) -> None:
    assert_role_refuses(host, "backup", bad_vars, needles)
