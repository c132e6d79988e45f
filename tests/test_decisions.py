"""The code that decides pass or fail, pinned value by value: the clock, targets, RPO arithmetic, fingerprint
comparison and the store kinds' canonical forms (no server: these are pure functions; the stores themselves
are judged against real servers and independent oracles elsewhere).

These tests are what `./dev mutate` runs against mutants of those modules (docs/testing.md): each
assertion is there because a mutant survived without it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

import bson
import pytest

from drill import rpo
from drill.clock import Phase, RecoveryClock
from drill.config import load_config
from drill.fingerprint import Difference, Fingerprint, PartPrint, compare, mismatch_message
from drill.results import TargetResult
from drill.stores.firestore import codec as firestore_codec
from drill.stores.mongodb import store as mongodb
from drill.stores.redis import fingerprint as redis_store
from drill.targets import TagError, evaluate, missed_message, targets_from_tags

# -- the recovery clock -------------------------------------------------------------------------------------


def test_the_clock_starts_once_and_stops_at_the_last_verification() -> None:
    started: list[Phase] = []
    ended: list[Phase] = []
    clock = RecoveryClock(started.append, ended.append)
    assert (clock.started, clock.running, clock.rto(), clock.disaster_at) == (False, False, None, None)
    with clock.phase("backup", "db") as before:
        assert before.status == "running" and before.seconds is None and before.ended_at is None
    assert before.in_rto is False and before.status == "passed"
    clock.stop()  # nothing to stop before a start
    assert clock.rto() is None
    wall = time.time()
    clock.start()
    first_start = clock.disaster_at
    assert first_start is not None and wall <= first_start <= time.time()
    assert clock.started and clock.running
    time.sleep(0.02)  # a measured interval, not a wait for readiness
    clock.start()  # the first disaster wins
    assert clock.disaster_at == first_start
    running = clock.rto()
    assert running is not None and 0.02 <= running < 60
    with clock.phase("restore", "db") as restore:
        time.sleep(0.01)
    assert restore.in_rto is True and restore.store == "db" and restore.name == "restore"
    assert restore.seconds is not None and restore.seconds >= 0.01
    assert restore.ended_at == pytest.approx(restore.started_at + restore.seconds)
    clock.stop()
    assert not clock.running and clock.started
    stopped = clock.rto()
    assert stopped is not None and stopped >= running + 0.01
    time.sleep(0.01)
    assert clock.rto() == stopped  # a stopped clock does not move
    clock.stop()  # a later verification moves the stop forward
    later = clock.rto()
    assert later is not None and later > stopped
    assert [p.name for p in started] == ["backup", "restore"] == [p.name for p in ended]


def test_a_failing_phase_is_marked_failed_and_still_timed() -> None:
    clock = RecoveryClock()
    with pytest.raises(KeyError), clock.phase("verify", "db"):
        raise KeyError("boom")
    [phase] = clock.phases
    assert phase.status == "failed" and phase.seconds is not None and phase.seconds >= 0


# -- targets --------------------------------------------------------------------------------------------------


def test_targets_from_tags(tmp_path: Path) -> None:
    (tmp_path / "drill.toml").write_text('[tiers.gold]\nrto = "5m"\nrpo = "30s"\n')
    config = load_config(tmp_path / "drill.toml")
    found = targets_from_tags({"rpo:1h", "tier:gold", "smoke", "rto:90s"}, config)
    assert [(t.metric, t.target_seconds, t.source) for t in found] == [
        ("rpo", 3600.0, "@rpo:1h"), ("rto", 90.0, "@rto:90s"), ("rto", 300.0, "@tier:gold"),
        ("rpo", 30.0, "@tier:gold")]
    assert all(t.measured_seconds is None and t.met is None for t in found)
    with pytest.raises(TagError, match=r"unknown tier in @tier:tin; tiers: .*gold.* \(add \[tiers.tin\] to drill"):
        targets_from_tags({"tier:tin"}, config)
    (tmp_path / "drill.toml").write_text('[tiers.gold]\nrto = "5m"\nrpo = "30s"\n[tiers.silver]\nrto = "1h"\n'
                                         'rpo = "1h"\n')
    with pytest.raises(TagError) as caught:
        targets_from_tags({"tier:tin"}, load_config(tmp_path / "drill.toml"))
    assert "tiers: critical, gold, important, silver, standard (add [tiers.tin]" in str(caught.value)
    with pytest.raises(TagError, match=r"^@rto:1:30: "):  # a value with a colon is a bad duration, not ignored
        targets_from_tags({"rto:1:30"}, config)
    with pytest.raises(TagError, match=r"^@rto:soon: cannot read duration 'soon'"):
        targets_from_tags({"rto:soon"}, config)
    assert [t.target_seconds for t in targets_from_tags({"rpo:500ms"}, config)] == [0.5]  # small is not zero
    for zero in ("rto:0s", "rpo:0m"):  # a target of nothing can never be met: refused, with an example
        with pytest.raises(TagError, match=rf"^@{zero}: a target must be above 0 \(e.g. @{zero[:3]}:30m\)$"):
            targets_from_tags({zero}, config)


@pytest.mark.parametrize("measured, met", [(None, False), (59.0, True), (60.0, True), (60.001, False)])
def test_a_target_is_met_up_to_and_including_its_value(measured: float | None, met: bool) -> None:
    target = TargetResult("rto", 60.0, "@rto:1m")
    evaluate(target, measured)
    assert target.met is met and target.measured_seconds == measured


def test_a_measured_target_forgets_why_it_could_not_be_measured() -> None:
    target = TargetResult("rpo", 60.0, "@rpo:1m")
    evaluate(target, None, "the restore failed")
    assert (target.met, target.unmeasured_reason) == (False, "the restore failed")
    assert missed_message(target) == "data loss (RPO) target 1m (@rpo:1m) could not be measured: the restore failed"
    evaluate(target, 5.0, "the restore failed")  # a figure wins over a stale reason
    assert (target.met, target.measured_seconds, target.unmeasured_reason) == (True, 5.0, None)


def test_missed_target_messages_name_the_metric_the_figures_and_the_source() -> None:
    rto = TargetResult("rto", 60.0, "@rto:1m", measured_seconds=90.0, met=False)
    assert missed_message(rto) == "recovery time (RTO) 1m30s exceeds the target 1m (@rto:1m)"
    loss = TargetResult("rpo", 1.0, "step at line 9", measured_seconds=2.34, met=False)
    assert missed_message(loss) == "data loss (RPO) 2.3s exceeds the target 1.0s (step at line 9)"
    assert missed_message(TargetResult("rto", 60.0, "@rto:1m")) == (
        "recovery time (RTO) target 1m (@rto:1m) could not be measured: the scenario has no restore")
    assert missed_message(TargetResult("rpo", 3600.0, "@tier:gold")) == (
        "data loss (RPO) target 1h (@tier:gold) could not be measured: the scenario has no restore from a backup")


# -- RPO arithmetic -------------------------------------------------------------------------------------------


def test_the_recovery_point_prefers_a_known_point_then_markers_then_the_backup() -> None:
    assert rpo.recovery_point((5.0, "recovery-target-time"), 7.0, 3.0) == (5.0, "recovery-target-time")
    assert rpo.recovery_point(None, 7.0, 3.0) == (7.0, "markers")
    assert rpo.recovery_point(None, 0.0, 3.0) == (0.0, "markers")  # a marker at time 0 is still a marker
    assert rpo.recovery_point(None, None, 3.0) == (3.0, "backup-consistent-time")
    # A canary `drill canary` left in a production backup comes after the scenario's own markers, before its date.
    assert rpo.recovery_point(None, None, 3.0, 2.0) == (2.0, "canary")
    assert rpo.recovery_point(None, 0.0, 3.0, 2.0) == (0.0, "markers")
    assert rpo.recovery_point((5.0, "recovery-target-time"), None, 3.0, 2.0) == (5.0, "recovery-target-time")
    assert rpo.recovery_point(None, None, 3.0, 0.0) == (0.0, "canary")


def test_a_backup_is_older_than_its_date_when_its_newest_canary_is_more_than_an_interval_older() -> None:
    assert rpo.older_than_its_date(100.0, 40.0, 60.0) is None  # exactly one interval: the cron's rhythm
    assert rpo.older_than_its_date(100.0, 39.5, 60.0) == 60.5
    assert rpo.older_than_its_date(100.0, 100.0, 60.0) is None
    assert rpo.older_than_its_date(100.0, 130.0, 60.0) is None  # a canary written after the backup's date


def test_rpo_is_the_time_from_the_recovery_point_to_the_disaster_never_negative() -> None:
    assert rpo.rpo_seconds(100.0, 97.5) == 2.5
    assert rpo.rpo_seconds(100.0, 100.0) == 0.0
    assert rpo.rpo_seconds(100.0, 100.5) == 0.0  # a marker stamped after the disaster (clock skew) loses nothing


def test_markers_lost_and_the_worst_rpo() -> None:
    assert rpo.markers_lost(20, 14, 20) == 6
    assert rpo.markers_lost(20, 20, 20) == 0
    assert rpo.markers_lost(20, None, 20) == 20  # none survived: all were lost
    assert rpo.markers_lost(None, None, 0) == 0
    assert rpo.worst(None, 0.0) is True
    assert rpo.worst(2.0, 3.0) is True
    assert rpo.worst(3.0, 3.0) is False
    assert rpo.worst(3.0, 2.0) is False
    assert rpo.worst(3.0, 2.0, "backup-age") is True  # a restore replaces the age of a backup only checked
    assert rpo.worst(3.0, 2.0, "markers") is False


# -- fingerprints and their comparison ------------------------------------------------------------------------


def _fp(parts: dict[str, PartPrint], extras: dict[str, str] | None = None) -> Fingerprint:
    return Fingerprint("postgres", "table", "rows", parts, extras or {}, taken_at=12.5)


def test_a_part_without_a_schema_reads_as_an_empty_schema() -> None:
    data = {"kind": "redis", "part_label": "key-space", "unit": "keys", "parts": {"db0": {"count": 1, "content": "c"}}}
    assert Fingerprint.from_dict(data).parts == {"db0": PartPrint(1, "c", {})}


def test_a_fingerprint_round_trips_and_totals_its_parts() -> None:
    fingerprint = _fp({"b": PartPrint(2, "y", {"z": "1", "a": "2"}), "a": PartPrint(3, "x")}, {"s": "1"})
    data = fingerprint.to_dict()
    assert data == {"kind": "postgres", "part_label": "table", "unit": "rows", "taken_at": 12.5, "total": 5,
                    "parts": {"a": {"count": 3, "content": "x", "schema": {}},
                              "b": {"count": 2, "content": "y", "schema": {"a": "2", "z": "1"}}},
                    "extras": {"s": "1"}}
    assert list(data["parts"]) == ["a", "b"] and list(data["parts"]["b"]["schema"]) == ["a", "z"]
    assert Fingerprint.from_dict(data) == fingerprint
    assert Fingerprint.from_dict({k: v for k, v in data.items() if k not in ("taken_at", "extras")}).taken_at == 0.0
    assert _fp({}).total == 0


def test_each_difference_has_its_part_kind_and_sentence() -> None:
    before = _fp({"a": PartPrint(3, "x", {"column v": "#1 int", "index i": "CREATE INDEX i"}),
                  "b": PartPrint(2, "y"), "c": PartPrint(5, "z"), "d": PartPrint(1, "same")}, {"seq": "5", "gone": "1"})
    after = _fp({"a": PartPrint(3, "x2", {"column v": "#1 bigint", "column w": "#2 text"}),
                 "c": PartPrint(7, "w"), "d": PartPrint(1, "same"), "e": PartPrint(1, "q")}, {"seq": "9", "new": "2"})
    found = [(d.part, d.what, d.message) for d in compare(before, after)]
    assert found == [
        ("b", "missing", "table b: missing (it held 2 rows at the backup)"),
        ("e", "unexpected", "table e: present now but not at the backup (1 rows)"),
        ("a", "schema", "table a: index i missing (was: CREATE INDEX i)"),
        ("a", "schema", "table a: column w added (now: #2 text)"),
        ("a", "schema", "table a: column v changed (was: #1 int; now: #1 bigint)"),
        ("a", "content", "table a: content differs with the same count (3 rows): at least one changed"),
        ("c", "count", "table c: 5 rows at the backup, 7 now (2 extra)"),
        ("gone", "extra", "gone: 1 at the backup, absent now"),
        ("new", "extra", "new: absent at the backup, 2 now"),
        ("seq", "extra", "seq: 5 at the backup, 9 now"),
    ]
    assert compare(after, after) == []
    fewer = compare(_fp({"c": PartPrint(5, "z")}), _fp({"c": PartPrint(4, "z")}))
    assert [d.message for d in fewer] == ["table c: 5 rows at the backup, 4 now (1 missing)"]
    assert fewer[0].to_dict() == {"part": "c", "what": "count", "message": fewer[0].message}


def test_the_mismatch_message_lists_every_difference_then_the_details() -> None:
    differences = [Difference("a", "count", "table a: 1 rows at the backup, 0 now (1 missing)"),
                   Difference("b", "content", "table b: content differs")]
    assert mismatch_message("copy", "db", "db-1", differences, ["document x: missing"]) == (
        "'copy' does not match the state of 'db' at backup db-1:\n  - table a: 1 rows at the backup, 0 now "
        "(1 missing)\n  - table b: content differs\n  - document x: missing")
    assert mismatch_message("db", "db", "db-3", differences[:1], ["document x: missing", "document y: added"]) == (
        "'db' does not match the state of 'db' at backup db-3:\n  - table a: 1 rows at the backup, 0 now (1 missing)"
        "\n  - document x: missing\n  - document y: added")
    assert mismatch_message("db", "db", "db-2", differences[:1]) == (
        "'db' does not match the state of 'db' at backup db-2:\n  - table a: 1 rows at the backup, 0 now (1 missing)")


# -- the store kinds' canonical forms -------------------------------------------------------------------------


def test_mongodb_documents_are_matched_by_their_typed_id() -> None:
    # The key that pairs a document at the backup with the same document now: its _id as BSON, so 3 and 3.0 are
    # two documents, and the rest of the document does not matter.
    assert mongodb._id_key({"_id": 3, "v": 1}) == mongodb._id_key({"v": 2, "_id": 3}) == bson.encode({"_id": 3})
    assert mongodb._id_key({"_id": 3}) != mongodb._id_key({"_id": 3.0})
    assert mongodb._id_key({"v": 1}) == bson.encode({"_id": None})


def test_mongodb_document_hashes_keep_types_and_values_but_not_key_order() -> None:
    base = {"_id": 1, "v": 3, "n": {"a": 1, "b": [1, {"y": 2, "x": 1}]}}
    same = {"n": {"b": [1, {"x": 1, "y": 2}], "a": 1}, "v": 3, "_id": 1}
    assert mongodb.document_hash(base) == mongodb.document_hash(same)
    raw = bson.raw_bson.RawBSONDocument(bson.encode(same))
    assert mongodb.document_hash(raw) == mongodb.document_hash(base)
    for changed in ({**base, "v": 3.0}, {**base, "v": 4}, {**base, "n": {"a": 1, "b": [{"y": 2, "x": 1}, 1]}},
                    {**base, "n": {"a": 1, "b": [1, {"y": 2, "x": 1, "z": None}]}}, {"_id": 1, "v": 3}):
        assert mongodb.document_hash(changed) != mongodb.document_hash(base), changed
    assert 0 <= mongodb.document_hash(base) < 2**64


def test_mongodb_index_schema_names_keys_and_options() -> None:
    indexes = [{"key": {"_id": 1}}, {"key": {"kind": 1, "at": -1}, "unique": True, "sparse": True},
               {"key": {"seen": 1}, "expireAfterSeconds": 60},
               {"key": {"s": 1}, "partialFilterExpression": {"b": 1, "a": {"$gt": 2}}}]
    assert mongodb.index_schema(indexes) == {
        "index {_id: 1}": "{_id: 1}", "index {kind: 1, at: -1}": "{kind: 1, at: -1} unique sparse",
        "index {seen: 1}": "{seen: 1} ttl 60s", "index {s: 1}": '{s: 1} partial {"a": {"$gt": 2}, "b": 1}'}


def test_mongodb_names_the_field_that_changed_and_how() -> None:
    was = mongodb._field_digests({"_id": 1, "v": 3, "s": "a", "gone": 1, "n": {"a": 1, "b": 2}})
    now = mongodb._field_digests({"_id": 1, "v": 3.0, "s": "b", "new": [1], "n": {"b": 2, "a": 1}})
    assert mongodb._field_changes(was, now) == [
        "field gone missing (it is in the backup)", "field new added (a array)",
        "field s changed value (a string)", "field v was a int32 at the backup, is a double now"]
    assert mongodb._field_changes(was, was) == []
    types = [mongodb._type_name(v) for v in (True, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, bson.int64.Int64(1),
                                              1.5, "s", {}, [], None, dt.datetime(2026, 1, 1), bson.ObjectId(),
                                              b"x", bson.decimal128.Decimal128("1.5"), object())]
    assert types == ["bool", "int32", "int64", "int32", "int64", "int64", "double", "string", "object", "array",
                     "null", "date", "objectId", "binData", "decimal", "object"]
    oid = bson.ObjectId("65a600000000000000000000")
    assert [mongodb._id_text(v) for v in (oid, "tpl-1", 7, {"a": 1})] == [
        "65a600000000000000000000", "tpl-1", "7", '{"a": 1}']


def test_redis_canonical_values_do_not_depend_on_encoding_or_hash_order() -> None:
    canonical = redis_store._canonical
    assert canonical("hash", {b"b": b"2", b"a": b"1"}) == canonical("hash", [b"a", b"1", b"b", b"2"]) == \
        [b"a", b"1", b"b", b"2"]
    assert canonical("set", {b"y", b"x"}) == [b"x", b"y"]
    assert canonical("list", [b"b", b"a"]) == [b"b", b"a"]  # a list keeps its order
    assert canonical("zset", [[b"m", 1.5], [b"n", 2.0]]) == [b"m\x001.5", b"n\x002.0"]
    assert canonical("stream", [(b"1-0", {b"f": b"v"}), (b"2-0", [b"g", b"w"])]) == [
        b"1-0", b"f", b"v", b"2-0", b"g", b"w"]
    assert canonical("string", b"v") == [b"v"] and canonical("string", None) == [b"(nil)"]
    assert [redis_store._b(v) for v in (b"x", 1.5, 3, "é")] == [b"x", b"1.5", b"3", "é".encode()]


def test_firestore_fingerprints_keep_types_and_skip_markers() -> None:
    assert firestore_codec.part_of("users/u1/sessions/s9") == "users/*/sessions"
    assert firestore_codec.part_of("users/u1") == "users"
    types = [firestore_codec.encoded_type(v) for v in (None, True, 3, 3.0, "s", [], {"$ts": "x"}, {"$geo": 1},
                                                        {"$ref": 1}, {"$bytes": 1}, {"$double": "NaN"},
                                                        {"$vector": 1}, {"$map": {}}, {"a": 1}, {"a": 1, "b": 2})]
    assert types == ["null", "boolean", "integer", "double", "string", "array", "timestamp", "geopoint",
                     "reference", "bytes", "double", "vector", "map", "map", "map"]
    assert firestore_codec.canonical("a/1", {"b": 1, "a": "é"}) == 'a/1\x00{"a":"é","b":1}'.encode()

    def build(*documents: tuple[str, dict[str, object]]) -> Fingerprint:
        builder = firestore_codec.FingerprintBuilder()
        for path, fields in documents:
            builder.add(path, fields)
        return builder.result(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    base = build(("users/u1", {"n": 3, "s": "x"}), ("users/u2", {"n": 4}), ("drill_markers/m1", {"seq": 1}))
    assert set(base.parts) == {"users"} and base.parts["users"].count == 2
    assert base.parts["users"].schema == {"field n": "integer", "field s": "string"}
    assert base.taken_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()
    assert build(("users/u2", {"n": 4}), ("users/u1", {"s": "x", "n": 3})) == base  # order does not matter
    typed = build(("users/u1", {"n": 3.0, "s": "x"}), ("users/u2", {"n": 4}))
    assert [d.message for d in compare(base, typed)] == [
        "collection users: field n changed (was: integer; now: double, integer)",
        "collection users: content differs with the same count (2 documents): at least one changed"]
    moved = build(("users/u1", {"n": 3, "s": "x"}), ("users/u3", {"n": 4}))
    assert compare(base, moved)[0].what == "content"
    assert build().parts == {} and build().extras == {}


def test_points_in_time_need_their_zone() -> None:
    from drill.durations import parse_point_in_time
    from drill.errors import StoreError
    utc = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC).timestamp()
    assert parse_point_in_time("2026-01-01T10:00:00Z") == utc
    assert parse_point_in_time(" 2026-01-01T12:00:00+02:00 ") == utc
    assert parse_point_in_time("2026-01-01T10:00:00.250+00:00") == utc + 0.25
    with pytest.raises(StoreError) as caught:
        parse_point_in_time("2026-01-01T10:00:00")
    assert str(caught.value) == "the point in time '2026-01-01T10:00:00' has no time zone: add one (\"Z\" for UTC)"
    with pytest.raises(StoreError) as caught:
        parse_point_in_time("yesterday")
    assert str(caught.value) == ("'yesterday' is not a point in time: write an ISO 8601 timestamp with its zone, "
                                 'e.g. "2026-01-01T10:00:00Z"')


def test_durations_at_their_boundaries() -> None:
    from drill.durations import DurationError, format_duration, parse_duration

    assert [format_duration(s) for s in (0.999, 3659, 3660, 7199)] == ["999ms", "1h", "1h01m", "1h59m"]
    for text in ("and", "x5 minutes", "5 minutes x"):
        with pytest.raises(DurationError):
            parse_duration(text)
    assert parse_duration("1 h 30 m") == 5400 and parse_duration(" 2 hours, 5 minutes ") == 7500


def test_retention_reasons_ties_order_and_the_utc_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    from drill.retention import RetentionPolicy, decide

    now = dt.datetime(2026, 11, 21, 2, 30, tzinfo=dt.UTC).timestamp()  # 02:30 UTC: another day in New York
    # Ids that sort against time, a tie in time broken by id, a backup at exactly now.
    backups = [("z-old", now - 3 * 86400), ("b", now - 7200), ("a", now - 7200), ("y-now", now)]
    decision = decide(backups, RetentionPolicy(hourly=2, daily=1, weekly=0, monthly=0), now)
    assert decision.keep == {"y-now": ["hourly 2026-11-21-02", "daily 2026-11-21"]}
    assert decision.delete == ["z-old", "a", "b"]  # oldest first; the tie in id order
    two_days = decide(backups, RetentionPolicy(hourly=0, daily=2, weekly=0, monthly=0), now)
    assert two_days.keep == {"y-now": ["daily 2026-11-21"]}
    hours = decide(backups, RetentionPolicy(hourly=3, daily=0, weekly=0, monthly=0), now)
    assert hours.keep == {"b": ["hourly 2026-11-21-00"], "y-now": ["hourly 2026-11-21-02"]}
    # The calendar is UTC whatever the machine's time zone.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert decide(backups, RetentionPolicy(hourly=3, daily=1, weekly=0, monthly=0), now).keep == {
            "b": ["hourly 2026-11-21-00"], "y-now": ["hourly 2026-11-21-02", "daily 2026-11-21"]}
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_mongodb_fingerprints_of_a_dump_are_order_independent_and_see_a_change(tmp_path: Path) -> None:
    def dump(name: str, documents: list[dict[str, object]]) -> Path:
        folder = tmp_path / name / "db"
        folder.mkdir(parents=True)
        (folder / "notes.bson").write_bytes(b"".join(bson.encode(d) for d in documents))
        (folder / "drill_markers.bson").write_bytes(bson.encode({"_id": 1, "seq": 1}))
        (folder / "notes.metadata.json").write_text(
            '{"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"}, '
            '{"v": 2, "key": {"v": -1}, "name": "v_-1", "unique": true}]}')
        return folder

    # A sum of 64-bit hashes that wraps around 2**64 an odd number of times: the modulus shows.
    candidates = [{"_id": i, "v": i} for i in range(40)]
    size = next(k for k in range(2, 40) if (sum(mongodb.document_hash(d) for d in candidates[:k]) >> 64) % 2 == 1)
    documents = candidates[:size]
    base = mongodb.fingerprint_of_dump(dump("a", documents))
    assert set(base.parts) == {"notes"} and base.parts["notes"].count == size and base.kind == "mongodb"
    assert base.parts["notes"].schema == {"index {_id: 1}": "{_id: 1}", "index {v: -1}": "{v: -1} unique"}
    assert compare(base, mongodb.fingerprint_of_dump(dump("b", documents[::-1]))) == []
    changed = mongodb.fingerprint_of_dump(dump("c", [*documents[:-1], {**documents[-1], "v": 1.0 * size - 1}]))
    assert [d.what for d in compare(base, changed)] == ["content"]
    fewer = mongodb.fingerprint_of_dump(dump("d", documents[:-1]))
    assert [d.what for d in compare(base, fewer)] == ["count"]
    # The content is the documented sum of 64-bit document hashes, as text: a format older backups share.
    total = sum(mongodb.document_hash(d) for d in documents) % (1 << 64)
    assert base.parts["notes"].content == hashlib.sha256(f"{size}:{total}".encode()).hexdigest()[:32]
    empty = mongodb.fingerprint_of_dump(dump("e", []))
    assert empty.parts["notes"] == PartPrint(0, hashlib.sha256(b"0:0").hexdigest()[:32], base.parts["notes"].schema)


def test_mongodb_batches_hashed_apart_add_up_to_the_documents_sums() -> None:
    """What a worker process hashes (drill/hash_workers.py): a raw batch's (count, sum mod 2**64), added in any
    order, is the sum of its documents' hashes; the modulus shows in a sum that wraps around 2**64."""
    from drill.stores.mongodb.fingerprint import _Accumulator, batch_sums

    documents = [{"_id": i, "v": {"b": i, "a": [i, str(i)]}} for i in range(60)]
    hashes = [mongodb.document_hash(d) for d in documents]
    assert sum(hashes) >= 1 << 64  # the plain sum wraps
    raw = [b"".join(bson.encode(d) for d in documents[start:start + 25]) for start in range(0, 60, 25)]
    assert batch_sums(raw[0]) == (25, sum(hashes[:25]) % (1 << 64))
    assert batch_sums(b"") == (0, 0)
    apart, one_by_one = _Accumulator(), _Accumulator()
    for count, total in (batch_sums(chunk) for chunk in reversed(raw)):
        apart.add_sums(count, total)
    for document in documents:
        one_by_one.add(document)
    assert (apart.count, apart.total) == (one_by_one.count, one_by_one.total) == (60, sum(hashes) % (1 << 64))
    assert apart.part({}) == one_by_one.part({})


def test_redis_stream_fields_in_flat_replies() -> None:
    assert redis_store._canonical("stream", [(b"1-0", [b"f", b"v", b"g", b"w"])]) == [
        b"1-0", b"f", b"v", b"g", b"w"]
    assert redis_store._canonical("hash", [b"b", b"2", b"a", b"1", b"c", b"3"]) == [
        b"a", b"1", b"b", b"2", b"c", b"3"]


def test_firestore_content_is_the_documented_sum_and_field_names_are_bounded() -> None:
    def digest(path: str, fields: dict[str, object]) -> int:
        return int.from_bytes(hashlib.blake2b(firestore_codec.canonical(path, fields), digest_size=8).digest(), "big")

    # Enough documents that the sum of their 64-bit hashes wraps around 2**64 an odd number of times, so that
    # a sum kept modulo anything but 2**64 shows.
    candidates = [(f"users/u{i}", {"n": i, "s": "x" * i}) for i in range(40)]
    size = next(k for k in range(2, 40) if (sum(digest(p, f) for p, f in candidates[:k]) >> 64) % 2 == 1)
    documents = candidates[:size]
    builder = firestore_codec.FingerprintBuilder()
    for path, fields in documents:
        builder.add(path, fields)
    builder.add("drill_markers/m1/sub/s1", {"seq": 1})  # anything under drill's markers is left out
    printed = builder.result()
    assert printed.kind == "firestore" and printed.part_label == "collection" and printed.unit == "documents"
    assert printed.extras == {} and abs(printed.taken_at - time.time()) < 60
    assert set(printed.parts) == {"users"}
    total = sum(digest(p, f) for p, f in documents) % (1 << 64)
    assert printed.parts["users"].content == hashlib.sha256(f"{size}:{total}".encode()).hexdigest()[:32]
    limit = firestore_codec.MAX_FIELDS
    wide = firestore_codec.FingerprintBuilder()
    wide.add("w/1", {f"f{i:03d}": i for i in range(limit + 1)})
    wide.add("w/2", {"zzz": 1, "f000": "now a string"})
    schema = wide.result().parts["w"].schema
    assert len([k for k in schema if k.startswith("field ")]) == limit
    assert schema["field f000"] == "integer, string"  # fields after an untracked one are still typed
    assert schema["fields not named"] == f"more than {limit} field names (content hash still covers them)"


def test_marker_file_names_round_trip_and_the_highest_sequence_wins() -> None:
    from drill.markers import marker_file_name, newest_marker
    from drill.stores.base import Marker

    written = [Marker(2, 1795792266.7089367), Marker(10, 1795792265.5), Marker(9, 1795792267.25)]
    names = [marker_file_name(m) for m in written] + ["README", "x-1.0", "000000000011-not-a-time"]
    assert marker_file_name(written[1]) == "000000000010-1795792265.5"
    assert newest_marker(names) == Marker(10, 1795792265.5)  # by sequence, not by time or name order
    assert newest_marker(["README"]) is None and newest_marker([]) is None
