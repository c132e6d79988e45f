"""Deterministic seed data for PostgreSQL: three tables with foreign keys, varied types, NULLs, non-ASCII.

`N rows` means N rows in all: about a fifth users, the rest split between orders and order items,
so that every foreign key points at a real row. The same N always gives byte-identical data.
Rows are generated inside the server (generate_series) in chunks, so seeding a gigabyte is fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import psycopg

SEED_TABLES = ("users", "orders", "order_items")
CHUNK = 200_000

SCHEMA = """
CREATE TABLE users (
    id          bigint PRIMARY KEY,
    email       text UNIQUE,
    full_name   text NOT NULL,
    country     char(2),
    balance     numeric(12,2) NOT NULL,
    active      boolean NOT NULL,
    created_at  timestamptz NOT NULL,
    birthday    date,
    profile     jsonb,
    avatar      bytea,
    score       double precision
);
CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id),
    status      text NOT NULL CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    total       numeric(12,2) NOT NULL,
    placed_at   timestamptz NOT NULL,
    note        text,
    ref         uuid NOT NULL
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE TABLE order_items (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    sku         text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  numeric(10,2) NOT NULL
);
CREATE INDEX order_items_order_id_idx ON order_items (order_id);
"""

# Non-ASCII on purpose: an encoding mistake in a backup path must change the fingerprint.
_FIRST = "ARRAY['Zoë','Łukasz','渡辺','Ñandú','Ørjan','Amélie','Søren','Çağrı','Дмитрий','Αθηνά','José','Miyu']"
_LAST = "ARRAY['Müller','Dvořák','山田','Ibáñez','Kowalczyk','O''Brien','Nguyễn','Þórsson','Şahin','Lefèvre']"

USERS = f"""
INSERT INTO users
SELECT i,
       CASE WHEN i %% 7 = 0 THEN NULL ELSE 'user' || i || '@example.com' END,
       ({_FIRST})[1 + i %% 12] || ' ' || ({_LAST})[1 + (i / 12) %% 10],
       CASE WHEN i %% 9 = 0 THEN NULL ELSE (ARRAY['DE','PL','JP','ES','NO','FR','DK','TR','UA','GR'])[1 + i %% 10] END,
       ((i * 7919) %% 1000000) / 100.0,
       i %% 3 <> 0,
       timestamptz '2024-01-01 00:00:00+00' + i * interval '37 minutes',
       CASE WHEN i %% 5 = 0 THEN NULL ELSE date '1950-01-01' + ((i * 97) %% 20000)::int END,
       CASE WHEN i %% 4 = 0 THEN NULL ELSE jsonb_build_object('lang', (ARRAY['de','pl','ja','es'])[1 + i %% 4],
            'vip', i %% 11 = 0, 'tags', jsonb_build_array('t' || i %% 5, 'ü' || i %% 3)) END,
       CASE WHEN i %% 6 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END,
       (i %% 1000) / 7.0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""

ORDERS = """
INSERT INTO orders
SELECT i,
       1 + (i - 1) %% %(users)s,
       (ARRAY['pending','paid','shipped','cancelled'])[1 + i %% 4],
       ((i * 104729) %% 5000000) / 100.0,
       timestamptz '2024-02-01 00:00:00+00' + i * interval '11 minutes 13 seconds',
       CASE WHEN i %% 10 = 0 THEN 'Lieferung an die Rückseite — 裏口へ' ELSE NULL END,
       md5('order' || i)::uuid
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
"""

ITEMS = """
INSERT INTO order_items (order_id, sku, quantity, unit_price)
SELECT 1 + (i - 1) %% %(orders)s,
       'SKU-' || lpad((i %% 9973)::text, 5, '0'),
       1 + i %% 5,
       ((i * 31) %% 100000) / 100.0
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) AS i
ORDER BY i
"""


def split(total: int) -> tuple[int, int, int]:
    """Rows per table for N rows in all: users, orders, order_items (foreign keys always satisfiable)."""
    if total <= 0:
        return 0, 0, 0
    users = math.ceil(total / 5)
    orders = math.ceil((total - users) / 2)
    return users, orders, total - users - orders


def seed(conn: psycopg.Connection[tuple[Any, ...]], total: int,
         progress: Callable[[str], None]) -> dict[str, int]:
    """Create the seed tables and fill them with `total` rows in all. The tables must not exist yet."""
    users, orders, items = split(total)
    conn.execute(SCHEMA)
    done = 0
    for table, sql, count, extra in (("users", USERS, users, {}), ("orders", ORDERS, orders, {"users": users}),
                                     ("order_items", ITEMS, items, {"orders": orders})):
        for lo in range(1, count + 1, CHUNK):
            hi = min(count, lo + CHUNK - 1)
            conn.execute(sql, {"lo": lo, "hi": hi, **extra})
            done += hi - lo + 1
            progress(f"{table}: {hi}/{count} rows ({done}/{total} in all)")
    conn.execute("ANALYZE users; ANALYZE orders; ANALYZE order_items")
    return {"users": users, "orders": orders, "order_items": items}
