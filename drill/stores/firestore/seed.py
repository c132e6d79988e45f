"""Seed data for Firestore stores: deterministic, varied documents, generated lazily (no list in memory)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import random
from collections.abc import Iterator

from drill.stores.firestore.codec import Document, rfc3339

SEED_COLLECTIONS = ("users", "products")  # top-level collections a seed refuses to write over

_NAMES = ("Zoë Martín", "Łukasz Żółć", "田中 太郎", "Ömer Çelik", "Ana O'Neil", "Nguyễn Văn A", "Søren Kierkegaard")
_CITIES = ((52.52, 13.405, "Berlin"), (35.6762, 139.6503, "東京"), (-33.8688, 151.2093, "Sydney"),
           (40.7128, -74.006, "New York"), (48.8566, 2.3522, "Paris"), (-23.5505, -46.6333, "São Paulo"))
_FRAMES = ("round", "square", "cat-eye", "aviator", "wayfarer", "oval")
_DEVICES = ("iPhone 15", "Pixel 8", "Galaxy S24", "MacBook Air", "ThinkPad X1")


def seed_documents(count: int) -> Iterator[tuple[str, Document]]:
    """`count` deterministic documents as (path, encoded fields), generated lazily (no list in memory).

    15% products, 25% users, 40% users/*/sessions, the rest users/*/sessions/*/events. Values cover
    every type the backup keeps: timestamps, geopoints, references, bytes, nested maps, arrays of
    maps, null, integers and doubles, non-ASCII strings.
    """
    products = count * 15 // 100 if count >= 4 else min(count, 1)
    users = max(1, count * 25 // 100) if count >= 2 else 0
    sessions = max(1, count * 40 // 100) if count >= 3 else 0
    events = count - products - users - sessions
    base = dt.datetime(2024, 1, 15, 14, 30, 0, 123456, tzinfo=dt.UTC)
    rng = random.Random(20240115)
    for i in range(products):
        yield f"products/p-{i:06d}", {
            "sku": f"EYE-{i:06d}", "name": f"{_FRAMES[i % len(_FRAMES)].title()} n°{i} — édition",
            "price": round(49 + rng.uniform(0, 400), 2), "stock": rng.randrange(0, 500), "active": i % 9 != 0,
            "created_at": {"$ts": rfc3339(base + dt.timedelta(hours=i))},
            "dimensions": {"lens_mm": 48 + i % 8, "bridge_mm": 18 + i % 4, "temple_mm": 140 + i % 6 * 5},
            "colors": ["black", "tortoise", "clear"][: i % 3 + 1], "thumbnail_sha": {"$bytes": base64.b64encode(
                hashlib.sha256(f"p{i}".encode()).digest()[:12]).decode()},
            "discontinued_at": None,
        }
    for i in range(users):
        lat, lng, city = _CITIES[i % len(_CITIES)]
        yield f"users/u-{i:06d}", {
            "email": f"user{i}@example.test", "name": _NAMES[i % len(_NAMES)],
            "created_at": {"$ts": rfc3339(base + dt.timedelta(minutes=7 * i))},
            "home": {"$geo": [round(lat + (i % 100) / 1000, 6), round(lng - (i % 100) / 1000, 6)]}, "city": city,
            "favourite": {"$ref": f"products/p-{i % products:06d}"} if products else None,
            "face": {"shape": ["oval", "round", "square", "heart"][i % 4], "pd_mm": 58 + (i % 14) * 0.5,
                     "measurements": [round(rng.uniform(10, 20), 3) for _ in range(3)]},
            "roles": ["customer"] + (["beta"] if i % 5 == 0 else []), "visits": i * 3, "score": i / 7,
            "last_login": None if i % 6 == 0 else {"$ts": rfc3339(base + dt.timedelta(days=30, seconds=i))},
        }
    for i in range(sessions):
        user = i % users
        yield f"users/u-{user:06d}/sessions/s-{i:06d}", {
            "started_at": {"$ts": rfc3339(base + dt.timedelta(days=1, seconds=41 * i))},
            "ended_at": None if i % 4 == 0 else {"$ts": rfc3339(base + dt.timedelta(days=1, seconds=41 * i + 600))},
            "device": {"model": _DEVICES[i % len(_DEVICES)], "os": ["iOS", "Android", "macOS"][i % 3]},
            "tried_on": [{"$ref": f"products/p-{(i + j) % products:06d}"} for j in range(i % 3)] if products else [],
            "duration_s": round(rng.uniform(5, 900), 3), "converted": i % 7 == 0,
        }
    for i in range(events):
        session = i % sessions
        user = session % users
        yield f"users/u-{user:06d}/sessions/s-{session:06d}/events/e-{i:06d}", {
            "at": {"$ts": rfc3339(base + dt.timedelta(days=1, seconds=41 * session + i % 600))},
            "kind": ["view", "try_on", "add_to_cart", "checkout"][i % 4],
            "payload": {"frame": _FRAMES[i % len(_FRAMES)], "fit": {"score": round(rng.uniform(0, 1), 4),
                                                                   "ok": i % 2 == 0}},
            "seq": i, "raw": {"$bytes": base64.b64encode(bytes([i % 256, 0, 255])).decode()},
        }
