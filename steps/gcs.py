"""Sentences only GCS stores understand (the kind names this module in KindSpec.steps)."""

from __future__ import annotations

from drill import backup_dates
from drill.errors import StoreError
from drill.scenario import DrillScenario
from drill.stores.capabilities import ObjectStore, ObjectVersions
from drill.stores.gcs import ReadsDatedCopies
from drill.vocabulary import STORE, sentence


@sentence("given when", rf"a backup of {STORE} is taken into the bucket \"(?P<bucket>[^\"]+)\"",
          "GCS: backs the bucket up by server-side copy into another bucket (metadata and hashes kept).",
          'Given a backup of "models" is taken into the bucket "eyewearml-backups"', needs=ObjectStore)
def take_backup_into_bucket(drill: DrillScenario, store: str, bucket: str) -> None:
    """Backs the bucket up by server-side copy (rewrite) of every object into
    `gs://<bucket>/<backup id>/<name>`, keeping metadata, content type and hashes; only the manifest is
    written locally. The bucket is used for this store's later backups too (as `backup_bucket` in
    drill.toml). A throwaway local store makes the bucket; a live one needs it to exist."""
    drill.take_backup_into_bucket(store, bucket)


@sentence("then", rf"{STORE} holds the object \"(?P<object_name>[^\"]+)\"",
          "GCS: a named object exists (the runbook's critical files check).",
          'Then "models" holds the object "models/face-analysis-v2.0/model.pb"', needs=ObjectStore)
def holds_object(drill: DrillScenario, store: str, object_name: str) -> None:
    """The named object exists in the bucket, as the runbook's critical-files check
    (`GCS_CRITICAL_FILES`). For counts per prefix use `Then "models" holds 40 objects in "models/"`."""
    drill.assert_holds_object(store, object_name)


@sentence("when", rf"{STORE} is restored from its object versions to the time of its latest backup",
          "GCS: point-in-time restore of a versioned bucket from object generations, to when the backup was taken.",
          'When "eyewearml-assets" is restored from its object versions to the time of its latest backup',
          needs=ObjectVersions)
def restore_from_versions(drill: DrillScenario, store: str) -> None:
    """A point-in-time restore of a versioned bucket from its object generations, to the moment its latest backup
    (taken by drill) started: every object as it was then, copied server-side from its old generation; objects made
    since are deleted. `matches its state at the backup` then compares with that backup's fingerprint. A metadata-
    only change makes no new generation, so this cannot undo it (the check then fails naming the object). On a live
    store it restores in place (`destructive = true`), or `into` a new bucket."""
    drill.restore_from_versions(store)


@sentence("given when", rf"the latest backup of {STORE} in the bucket \"(?P<bucket>[^\"]+)\" under "
                        rf"\"(?P<pattern>[^\"]+)\"",
          "GCS: the newest dated copy production made of the bucket under a backup bucket (gcs_backup.sh), found by a "
          "pattern of folders; its manifest's sha256 is recorded and restores copy it back server-side.",
          'Given the latest backup of "models" in the bucket "eyewearml-backups" under "models/*/"',
          needs=ReadsDatedCopies)
def latest_dated_copy(drill: DrillScenario, store: str, bucket: str, pattern: str) -> None:
    found = drill.store(store)
    if not isinstance(found, ReadsDatedCopies):
        raise StoreError(f"{store!r} is a {found.kind} store: only a GCS store has dated copies in a backup bucket")
    zone = drill.config.time_zone_of(store)
    with drill.clock.phase("fetch", store):
        artifact = found.dated_copy(bucket, pattern, zone)
    backup_dates.require_not_future(f"the latest backup of {store!r}, {artifact.id},",
                                    backup_dates.BackupDate(artifact.created_at, "name", zone))
    drill.record_backup(artifact)
    drill.reporter.info(f"latest backup of {store}: {artifact.id} ({artifact.size} bytes, manifest sha256 "
                        f"{artifact.sha256})", force=True)
