"""The runbook's point-in-time recovery from its own files: base_backup_*.tar.gz plus the WAL archive folder.

A password-protected cluster started by the test archives its WAL; `pg_basebackup -Ft | gzip` writes the
base backup; rows are written before and after a moment T. Recovered to T from those files, the store
holds exactly the rows written before T (psql on the test's cluster counted them, and drill's throwaway
cluster must hold the same); the production-side settings in the copy (its archive_command, its
pg_hba.conf) are not used: nothing is written into production's WAL archive or the backup folder.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.conftest import run_drill
from tests.live_servers import LivePostgres
from tests.runbook_fixtures import archive_wal, pg_base_backup_tar_gz, stamp, switch_wal


def _archive_listing(folder: Path) -> dict[str, tuple[int, float]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime) for p in sorted(folder.iterdir())}


def test_point_in_time_recovery_from_a_base_backup_tar_gz_and_a_wal_folder(drill_dir: Path) -> None:
    backups = drill_dir / "backups" / "postgres"
    # Production's archive: its archive_command is in the copy's postgresql.auto.conf, so it outlives the server
    # here, and must see no new file from the drill's restored copy.
    production_archive = Path(tempfile.mkdtemp(prefix="drilltest-prod-wal-")) / "archive"
    with LivePostgres() as pg:
        pg.create_database("userdb")
        pg.seed_ledger("userdb", rows=100)  # 50 accounts
        if pg._account:
            os.chown(production_archive.parent, pg._account.pw_uid, pg._account.pw_gid)
        archive = archive_wal(pg, production_archive)
        base = pg_base_backup_tar_gz(pg, backups / f"base_backup_{stamp()}.tar.gz")
        pg.psql("INSERT INTO accounts (name, balance) SELECT 'before-' || g, 1 FROM generate_series(1, 30) g", "userdb")
        time.sleep(1.0)  # a clear gap around T: the commit records of both batches stay on their side of it
        target = dt.datetime.now(dt.UTC)
        time.sleep(1.0)
        pg.psql("INSERT INTO accounts (name, balance) SELECT 'after-' || g, 1 FROM generate_series(1, 20) g", "userdb")
        switch_wal(pg, archive)
        before_target = pg.psql("SELECT count(*) FROM accounts WHERE name NOT LIKE 'after-%'", "userdb")
        assert before_target == "80" and pg.psql("SELECT count(*) FROM accounts", "userdb") == "100"
        shutil.copytree(archive, backups / "wal")
    listing = _archive_listing(backups / "wal")
    production = _archive_listing(production_archive)
    when = target.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    (drill_dir / "features").mkdir()
    found = ('the latest base backup of "userdb" in "backups/postgres/base_backup_*.tar.gz" with the WAL archive '
             '"backups/postgres/wal/"')
    (drill_dir / "features" / "pitr.feature").write_text(f'''Feature: the runbook's PITR
  Scenario: recovered to T from the runbook's files
    Given the PostgreSQL store "userdb"
    And {found}
    When "userdb" is restored to the point in time "{when}"
    Then "userdb" holds 80 rows in "accounts"
    And "userdb" holds 180 rows
''')
    run = run_drill(drill_dir, "run")
    assert run.code == 0, run.output
    assert run.results is not None
    [scenario] = run.results["scenarios"]
    assert scenario["evidence"]["pitr"]["userdb"]["base_backup"] == base.name
    assert scenario["rpo_method"] == "recovery-target-time"
    assert _archive_listing(backups / "wal") == listing
    assert _archive_listing(production_archive) == production  # the copy's archive_command never ran
    shutil.rmtree(production_archive.parent)
