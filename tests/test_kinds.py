"""Store kinds describe themselves: shared tables, patterns and drill.toml checks are built from their declarations."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from drill import vocabulary
from drill.config import StoreConfig, _Validator, load_config
from drill.errors import ConfigError
from drill.stores import kinds
from drill.stores.kinds import KindError, KindOptions, KindSpec

# The documented kinds (docs: reference/vocabulary.md, reference/configuration.md), written out as the oracle:
# kind -> (names in sentences, unit, part label, provision modes).
DOCUMENTED = {
    "postgres": (("PostgreSQL",), "rows", "table", {"local", "container", "live"}),
    "mongodb": (("MongoDB",), "documents", "collection", {"local", "container", "live"}),
    "redis": (("Redis",), "keys", "key-space", {"local", "container", "live"}),
    "volume": (("Docker volume",), "files", "directory", {"local", "container", "live"}),
    "gcs": (("GCS", "Google Cloud Storage"), "objects", "prefix", {"local", "live"}),
    "firestore": (("Firestore",), "documents", "collection", {"local", "live"}),
    "files": (("files",), "files", "directory", {"local", "live"}),
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drill.toml"
    path.write_text(text)
    return path


def test_every_documented_kind_declares_itself() -> None:
    found = kinds.all_kinds()
    for kind, (names, unit, label, modes) in DOCUMENTED.items():
        spec = found[kind]
        assert (spec.names, spec.unit, spec.part_label, set(spec.provisioners)) == (names, unit, label, modes)
        assert spec.unit_one == unit.removesuffix("s")


@pytest.mark.parametrize("kind", sorted(DOCUMENTED))
def test_the_vocabulary_patterns_are_built_from_the_declarations(kind: str) -> None:
    names, unit, _, _ = DOCUMENTED[kind]
    declare = vocabulary.find("given", f'the {names[-1]} store "x"')
    assert declare is not None and declare[1]["kind"] == names[-1]
    for word in (unit, unit.removesuffix("s")):
        seeded = vocabulary.find("given", f'"x" is seeded with 3 {word}')
        assert seeded is not None and seeded[1]["unit"] == word
    assert vocabulary.find("given", 'the Oracle store "x"') is None


def test_the_configuration_keys_are_the_common_ones_and_every_kinds_own() -> None:
    own = {"database", "restore_jobs", "image", "pitr", "appendonly", "volume", "stop_containers", "bucket",
           "backup_bucket", "project", "export_uri"}
    assert own <= _Validator.STORE_KEYS
    assert {"kind", "provision", "url_env", "destructive", "allow_writes", "depends_on", "restore_timeout", "stage",
            "rto"} <= _Validator.STORE_KEYS
    for spec in kinds.all_kinds().values():
        assert set(spec.options.key_names()) <= _Validator.STORE_KEYS


@pytest.mark.parametrize("text, line, fragment", [
    ('[stores.c]\nkind = "redis"\npitr = true\n', 3, "[stores.c.pitr] only applies to postgres stores (this store is "
                                                     "redis)"),
    ('[stores.c]\nkind = "gcs"\nimage = "x"\n', 3, "[stores.c.image] only applies to mongodb, postgres, redis and "
                                                   "volume stores (this store is gcs)"),
    ('[stores.b]\nkind = "gcs"\nprovision = "container"\n', 3,
     "[stores.b.provision] provision = 'container' is not available for gcs stores; one of: local, live"),
    ('[stores.db]\nkind = "postgres"\nrestore_jobs = 0\n', 3, "[stores.db.restore_jobs] must be a whole number of "
                                                             "at least 1"),
    ('[stores.db]\nkind = "postgres"\nprovision = "live"\nurl_env = "DB_URL"\npitr = true\n', 5,
     "[stores.db.pitr] point-in-time recovery (pitr = true) is available for local PostgreSQL stores only"),
    ('[stores.v]\nkind = "volume"\nstop_containers = "web"\n', 3, "[stores.v.stop_containers] must be a list of "
                                                                  "strings"),
    ('[stores.v]\nkind = "volume"\nprovision = "live"\n', 3, "a live Docker volume store needs `volume`"),
])
def test_kind_keys_are_checked_by_the_kind_with_file_and_line(tmp_path: Path, text: str, line: int,
                                                              fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert fragment in str(caught.value)


def test_kind_keys_are_typed_options_and_profiles_override_them(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[stores.db]\nkind = "postgres"\ndatabase = "users"\nrestore_jobs = 2\n'
                                         '[stores.v]\nkind = "volume"\nstop_containers = ["web", "worker"]\n'
                                         '[profiles.ci.stores.db]\nrestore_jobs = 1\n'))
    db, volume = config.stores["db"], config.stores["v"]
    assert type(db.options).__name__ == "PostgresOptions" and db.options.key_names() == (
        "database", "restore_jobs", "image", "pitr", "restore_owners")  # restore_owners: issue 12
    assert (db.database, db.restore_jobs, db.pitr) == ("users", 2, False)  # read through to the options
    assert volume.stop_containers == ("web", "worker")
    ci = load_config(tmp_path / "drill.toml", profile="ci").stores["db"]
    assert (ci.database, ci.restore_jobs) == ("users", 1)  # the profile changed one key, kept the other
    with pytest.raises(AttributeError):
        _ = volume.database  # a key of another kind is no attribute of this store


def test_the_old_flat_keywords_still_build_a_store_config() -> None:
    config = StoreConfig("userdb", "postgres", pitr=True, database="users")
    assert (config.pitr, config.database, config.options.pitr) == (True, "users", True)  # type: ignore[attr-defined]
    assert replace(config, restore_jobs=3).restore_jobs == 3  # type: ignore[call-arg]
    assert replace(config, provision="container").database == "users"
    flat = StoreConfig(**{**config.__dict__, "image": "postgres:16"})
    assert flat.image == "postgres:16" and flat.pitr
    with pytest.raises(ConfigError, match="bucket is not a key of redis stores; its keys: appendonly, image"):
        StoreConfig("cache", "redis", bucket="b")
    assert StoreConfig("x", "gcs").flat() == {
        "name": "x", "kind": "gcs", "provision": "local", "url_env": None, "destructive": False,
        "allow_writes": False, "depends_on": (), "restore_timeout": None, "stage": None, "rto": None,
        "bucket": None, "backup_bucket": None}


def test_a_test_mode_copy_keeps_only_what_a_throwaway_store_may_use() -> None:
    live = StoreConfig("prod", "volume", provision="live", volume="appdata", stop_containers=("web",))
    assert live.options.throwaway() == type(live.options)()  # never the live volume's name
    users = StoreConfig("prod", "postgres", provision="live", url_env="X", database="users", restore_jobs=2)
    assert users.options.throwaway() == type(users.options)(database="users")  # type: ignore[call-arg]


def test_a_declaration_that_cannot_work_is_refused() -> None:
    with pytest.raises(KindError, match="provisioners must be some of local, container, live, found cloud"):
        KindSpec(kind="x", names=("X",), unit="things", part_label="part", provisioners={"cloud": "m:f"})
    with pytest.raises(KindError, match="declares no name for sentences"):
        KindSpec(kind="x", names=(), unit="things", part_label="part", provisioners={"local": "m:f"})
    with pytest.raises(KindError, match="a kind is lower-case letters"):
        KindSpec(kind="My Kind", names=("X",), unit="things", part_label="part", provisioners={"local": "m:f"})


def test_two_kinds_cannot_claim_one_name() -> None:
    found = kinds._Found()
    found.add(kinds.spec("gcs"), "drill")
    other = KindSpec(kind="s3", names=("GCS",), unit="objects", part_label="prefix", provisioners={"live": "m:f"},
                     options=KindOptions)
    with pytest.raises(KindError, match="the store name 'GCS' in sentences is claimed by kind 'gcs' and by kind 's3'"):
        found.add(other, "a plugin")
    with pytest.raises(KindError, match="store kind 'gcs' is declared twice: by drill and by again"):
        found.add(kinds.spec("gcs"), "again")


def test_the_provision_factory_refuses_what_a_kind_does_not_declare() -> None:
    from drill.cleanup import CleanupStack
    from drill.errors import ProvisionError
    from drill.provision.factory import provision

    with pytest.raises(ProvisionError, match=re.escape("provision = \"container\" is not available for firestore "
                                                       "stores in this version of drill; use one of: 'local', "
                                                       "'live'")):
        provision(StoreConfig("app", "firestore", provision="container"), CleanupStack())


def test_the_old_tables_are_read_from_the_declarations() -> None:
    """Code written against the hand-kept tables (base.UNITS, KIND_NAMES, PART_LABELS, config.STORE_KINDS) reads
    the same values from the kinds' declarations."""
    from drill.config import STORE_KINDS
    from drill.stores.base import KIND_NAMES, PART_LABELS, UNITS

    assert {name: KIND_NAMES[name] for name in KIND_NAMES} == {
        name: kind for kind, (names, _, _, _) in DOCUMENTED.items() for name in names}
    assert dict(UNITS) == {kind: unit for kind, (_, unit, _, _) in DOCUMENTED.items()}
    assert dict(PART_LABELS) == {kind: label for kind, (_, _, label, _) in DOCUMENTED.items()}
    assert sorted(STORE_KINDS) == sorted(DOCUMENTED) and "oracle" not in STORE_KINDS
