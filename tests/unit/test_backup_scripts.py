"""The backup role's host scripts (templates/usr/local/sbin/prodready-backup{,-restore-test}.j2),
rendered with the role's defaults and run against a scratch backup directory, with PostgreSQL's
tools, tar and df replaced by fakes. Molecule (backup, stack) runs them on real hosts; these cases
cover what a real host rarely shows on cue: a file changing while tar reads it, a full disk (#20)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import FakeRoot, render_role_template

FAKES = {
    "runuser": '#!/bin/bash\n[ "$1" = -u ] && shift 2\n[ "$1" = -- ] && shift\nexec "$@"\n',
    "pg_dump": '#!/bin/bash\necho "pg_dump $*" >> "$FAKE/calls"\necho "dump of $*"\n',
    "pg_dumpall": '#!/bin/bash\necho "pg_dumpall $*" >> "$FAKE/calls"\necho "-- globals"\n',
    # pg_restore -l answers the table of contents in $FAKE/toc; a restore records its -L list too.
    "pg_restore": """#!/bin/bash
echo "pg_restore $*" >> "$FAKE/calls"
[ "$1" = -l ] && { cat "$FAKE/toc" 2>/dev/null; exit 0; }
while [ $# -gt 0 ]; do [ "$1" = -L ] && cp "$2" "$FAKE/restored-list"; shift; done
""",
    "chown": '#!/bin/bash\necho "chown $*" >> "$FAKE/calls"\n',
    "createdb": '#!/bin/bash\necho "createdb $*" >> "$FAKE/calls"\n',
    "dropdb": '#!/bin/bash\necho "dropdb $*" >> "$FAKE/calls"\n',
    # pg_database_size answers $FAKE/dbsize (bytes), SHOW data_directory $FAKE/datadir, a row count 1.
    "psql": """#!/bin/bash
echo "psql $*" >> "$FAKE/calls"
case "$*" in
  *pg_database_size*) cat "$FAKE/dbsize" ;;
  *data_directory*) cat "$FAKE/datadir" ;;
  *count*) echo 1 ;;
esac
case "$*" in *"-v role="* | *"-v ext="*) sed "s/^/  stdin: /" >> "$FAKE/calls" ;; esac
""",
    # Writes the archive named by -f and exits with $FAKE/tar-rc (1: a file changed while read).
    "tar": """#!/bin/bash
echo "tar $*" >> "$FAKE/calls"
while [ $# -gt 0 ]; do [ "$1" = -cf ] && { echo archive > "$2"; break; }; shift; done
exit "$(cat "$FAKE/tar-rc" 2>/dev/null || echo 0)"
""",
    # $FAKE/df holds "<size> <avail>" in bytes for every filesystem.
    "df": '#!/bin/bash\necho "1B-blocks Avail"\ncat "$FAKE/df"\n',
}
GIB = 1 << 30


class BackupHost(FakeRoot):
    """A scratch backup directory (backups/), metrics directory and media path for the rendered scripts."""

    def __init__(self, root: Path, script: str) -> None:
        super().__init__(root, FAKES, script)
        (root / "media").mkdir()
        (root / "media" / "upload.bin").write_bytes(b"x" * 4096)
        self.fake("dbsize", "1000\n")
        self.fake("datadir", str(root) + "\n")
        self.disk(size=100 * GIB, avail=50 * GIB)
        self.install(render_role_template(
            "backup", f"usr/local/sbin/{script}.j2", backup_dir=str(root / "backups"), backup_databases=["app"],
            backup_files_paths=[str(root / "media")], backup_metrics_dir=str(root / "metrics"),
            backup_restore_test_tables=[], __backup_lock=str(root / "backup.lock"),
            __backup_restore_test_lock=str(root / "restore-test.lock"), ansible_managed="managed"))

    def disk(self, size: int, avail: int) -> None:
        self.fake("df", f"{size} {avail}\n")

    def metrics(self, name: str) -> dict[str, str]:
        text = (self.root / "metrics" / name).read_text()
        return dict(re.findall(r"^(prodready_\w+) (\S+)$", text, re.MULTILINE))

    def runs(self) -> list[str]:
        backups = self.root / "backups"
        return sorted(p.name for p in backups.iterdir()) if backups.exists() else []

    def calls(self) -> str:
        calls = self.root / "fake" / "calls"
        return calls.read_text() if calls.exists() else ""


@pytest.fixture
def backup(tmp_path: Path) -> BackupHost:
    return BackupHost(tmp_path, "prodready-backup")


@pytest.fixture
def restore_test(tmp_path: Path) -> BackupHost:
    return BackupHost(tmp_path, "prodready-backup-restore-test")


def test_a_normal_run_is_complete_and_verified(backup: BackupHost) -> None:
    out = backup.run()
    assert out.returncode == 0, out.stderr
    (run,) = [name for name in backup.runs() if name != "latest"]
    assert sorted(p.name for p in (backup.root / "backups" / run).iterdir()) == [
        "SHA256SUMS", "app.dump", "files.tar.zst", "globals.sql"]
    metrics = backup.metrics("prodready_backup.prom")
    assert (metrics["prodready_backup_last_status"], metrics["prodready_backup_files_changed"],
            metrics["prodready_backup_free_space_ok"]) == ("1", "0", "1")


def test_files_changing_while_archived_keep_the_verified_dumps(backup: BackupHost) -> None:
    """#20: tar's exit 1 ("file changed as we read it", an upload in progress) failed the whole run and
    discarded the dumps that had already been verified."""
    backup.fake("tar-rc", "1\n")
    out = backup.run()
    assert out.returncode == 0, out.stderr
    assert "WARNING: files changed while they were archived (tar exit 1)" in out.stdout
    (run,) = [name for name in backup.runs() if name != "latest"]
    assert (backup.root / "backups" / run / "app.dump").read_text().startswith("dump of")
    metrics = backup.metrics("prodready_backup.prom")
    assert (metrics["prodready_backup_last_status"], metrics["prodready_backup_files_changed"]) == ("1", "1")


def test_a_failing_archive_still_fails_the_run(backup: BackupHost) -> None:
    backup.fake("tar-rc", "2\n")
    out = backup.run()
    assert out.returncode != 0 and "failed (tar exit 2)" in out.stderr
    assert backup.runs() == []
    assert backup.metrics("prodready_backup.prom")["prodready_backup_last_status"] == "0"


def test_a_run_that_would_not_fit_is_refused_before_it_writes(backup: BackupHost) -> None:
    """#20: no free-space check; a full disk stops PostgreSQL. 100 GiB filesystem, 12 GiB free, 10% reserved:
    a first run of a 1 GiB database fits, one of a 2 GiB database does not."""
    backup.disk(size=100 * GIB, avail=12 * GIB)
    backup.fake("dbsize", f"{2 * GIB}\n")
    out = backup.run()
    assert out.returncode != 0
    assert re.search(r"not enough free space in \S+: the run needs about \d+ bytes, \d+ are free and \d+ stay free", out.stderr)
    assert backup.runs() == [] and "pg_dump" not in backup.calls()
    metrics = backup.metrics("prodready_backup.prom")
    assert (metrics["prodready_backup_last_status"], metrics["prodready_backup_free_space_ok"]) == ("0", "0")
    backup.fake("dbsize", f"{GIB}\n")
    assert backup.run().returncode == 0, backup.run().stderr


def test_later_runs_are_estimated_from_the_last_one(backup: BackupHost) -> None:
    """After a run, its size (plus a fifth) is the estimate, not the databases' size."""
    assert backup.run().returncode == 0
    (run,) = [name for name in backup.runs() if name != "latest"]
    (backup.root / "backups" / run / "padding").write_bytes(b"p" * 100_000)
    backup.fake("dbsize", f"{50 * GIB}\n")  # far more than the disk: ignored once a run exists
    backup.disk(size=1_000_000, avail=100_000 + 90_000)  # 100 000 reserved, 90 000 usable
    time.sleep(1.1)  # run directories are named to the second
    out = backup.run()
    assert out.returncode != 0 and "the run needs about 12" in out.stderr, out.stderr
    backup.disk(size=1_000_000, avail=100_000 + 200_000)
    assert backup.run().returncode == 0


def test_restore_test_refuses_a_copy_that_would_fill_postgresqls_disk(restore_test: BackupHost, tmp_path: Path) -> None:
    """#20: the weekly restore test copies each database inside the production cluster."""
    run = tmp_path / "backups" / "2026-12-01T020000Z"
    run.mkdir(parents=True)
    (run / "app.dump").write_text("dump")
    (tmp_path / "backups" / "latest").symlink_to(run.name)
    restore_test.disk(size=100 * GIB, avail=12 * GIB)  # 10 GiB stay free: 2 GiB for the copy
    restore_test.fake("dbsize", f"{3 * GIB}\n")
    out = restore_test.run()
    assert out.returncode != 0 and "not enough free space for a copy of app in" in out.stderr, out.stderr
    assert "createdb" not in restore_test.calls()
    metrics = restore_test.metrics("prodready_backup_restore_test.prom")
    assert (metrics["prodready_backup_restore_test_last_status"],
            metrics["prodready_backup_restore_test_free_space_ok"]) == ("0", "0")
    restore_test.fake("dbsize", f"{GIB}\n")
    out = restore_test.run()
    assert out.returncode == 0 and "createdb -T template0 -O prodready_restore_test app_restore_test" in restore_test.calls(), \
        out.stderr


TOC = """;
; Archive created at 2026-12-01 02:00:00 UTC
;
3; 3079 16385 EXTENSION - citext
4; 0 0 COMMENT - EXTENSION citext
5; 2615 2200 SCHEMA - public postgres
6; 0 0 COMMENT - SCHEMA public postgres
215; 1259 16400 TABLE public items app
216; 1255 16410 FUNCTION public planted(integer) app
3400; 1259 16420 INDEX public planted_idx app
"""


def test_restore_test_restores_and_reads_as_a_role_without_privileges(restore_test: BackupHost, tmp_path: Path) -> None:
    """#19: the restore replayed the app-owned dump as the superuser, so code the app's role planted (an
    index expression, a view) ran as postgres. It now restores with --role into a database that role
    owns; postgres only creates the role, the database and the dump's extensions."""
    run = tmp_path / "backups" / "2026-12-01T020000Z"
    run.mkdir(parents=True)
    (run / "app.dump").write_text("dump")
    (tmp_path / "backups" / "latest").symlink_to(run.name)
    restore_test.fake("toc", TOC)
    restore_test.install(render_role_template(
        "backup", "usr/local/sbin/prodready-backup-restore-test.j2", backup_dir=str(tmp_path / "backups"),
        backup_databases=["app"], backup_metrics_dir=str(tmp_path / "metrics"),
        backup_restore_test_tables=[{"database": "app", "table": "public.items"}],
        __backup_restore_test_lock=str(tmp_path / "restore-test.lock"), ansible_managed="managed"))
    out = restore_test.run()
    assert out.returncode == 0, out.stderr
    calls = restore_test.calls()
    assert "CREATE ROLE %I NOLOGIN" in calls and "NOSUPERUSER" in calls
    assert "createdb -T template0 -O prodready_restore_test app_restore_test" in calls
    assert "psql -XAtq -v ON_ERROR_STOP=1 -d app_restore_test -v ext=citext" in calls
    restore = next(line for line in calls.splitlines() if line.startswith("pg_restore") and "-d app_restore_test" in line)
    assert "--role=prodready_restore_test" in restore and "--no-owner" in restore and "--no-privileges" in restore
    restored = (tmp_path / "fake" / "restored-list").read_text()
    assert "TABLE public items" in restored and "INDEX public planted_idx" in restored
    assert "EXTENSION" not in restored and "SCHEMA - public" not in restored and "COMMENT - SCHEMA public" not in restored
    check = next(line for line in calls.splitlines() if "count(*)" in line)
    assert '-c SET ROLE "prodready_restore_test"' in check and "public.items" in check
    assert "public.items has rows" in out.stdout
