"""The PostgreSQL content hash on a real cluster: which method each table gets, and that each one sees a
changed value (hash_record_extended for hashable column types, the row's text form for the rest)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from drill.fingerprint import compare
from drill.provision import pg_binaries
from drill.provision.local_postgres import LocalPostgresCluster
from drill.stores.postgres import fingerprint_in


@pytest.fixture(scope="module")
def conn() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with LocalPostgresCluster(pg_binaries.for_local_cluster()) as cluster, \
            psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as connection:
        connection.execute("CREATE TABLE plain (id int, n numeric, tags text[], b bytea)")
        connection.execute("INSERT INTO plain VALUES (1, 1.5, '{a,b}', '\\x00ff'), (2, NULL, NULL, NULL)")
        connection.execute("CREATE TABLE shapes (id int, doc json, at point)")
        connection.execute("INSERT INTO shapes VALUES (1, '{\"x\": 1}', '(1,2)')")
        connection.execute("CREATE TABLE r (r int, s text)")
        connection.execute("INSERT INTO r VALUES (1, 'original')")
        yield connection


def test_hashable_tables_use_binary_row_hashes_and_others_fall_back(
        conn: psycopg.Connection[tuple[object, ...]]) -> None:
    printed = fingerprint_in(conn)
    major = int(str(conn.execute("SHOW server_version_num").fetchone()[0])) // 10000  # type: ignore[index]
    assert printed.parts["public.plain"].schema["content hash"] == \
        ("hash_record_extended" if major >= 14 else "hashtextextended(row text)")
    assert printed.parts["public.shapes"].schema["content hash"] == "hashtextextended(row text)"


@pytest.mark.parametrize("table, change", [
    ("plain", "UPDATE plain SET tags = '{a,c}' WHERE id = 1"),
    ("plain", "UPDATE plain SET n = 0 WHERE id = 2"),  # a NULL that became a value
    ("shapes", "UPDATE shapes SET doc = '{\"x\": 2}'"),
    # A column named like the row alias must not hide the rest of the row.
    ("r", "UPDATE r SET s = 'changed'"),
])
def test_every_method_sees_a_changed_value(conn: psycopg.Connection[tuple[object, ...]], table: str,
                                           change: str) -> None:
    before = fingerprint_in(conn)
    conn.execute(change)
    differences = compare(before, fingerprint_in(conn))
    assert [d.part for d in differences] == [f"public.{table}"], differences
