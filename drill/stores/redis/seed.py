"""Redis seed data: every key type, some with a TTL, deterministic per index."""

from __future__ import annotations

from typing import Any

SEED_TYPES = ("string", "hash", "list", "set", "zset", "stream")
SEED_TTL_EVERY = 7  # every 7th seeded key expires (in a day or more: never during a drill)


# -- seed data ------------------------------------------------------------------------------------------------

_NAMES = ("Zoë", "José", "Łukasz", "Ångström", "Søren", "Nguyễn", "Μαρία", "Дмитрий", "李雷", "محمد")


def _seed_key(pipe: Any, i: int) -> None:
    kind = SEED_TYPES[i % len(SEED_TYPES)]
    key = f"seed:{kind}:{i:08d}"
    name = _NAMES[i % len(_NAMES)]
    if kind == "string":
        pipe.set(key, f"{name} — café ☕ #{i}")
    elif kind == "hash":
        pipe.hset(key, mapping={"name": name, "city": "Zürich", "visits": str(i * 3), "score": f"{i / 7:.6f}"})
    elif kind == "list":
        pipe.rpush(key, *(f"{name}-{j}" for j in range(i % 5 + 1)))
    elif kind == "set":
        pipe.sadd(key, *(f"tag-{(i + j) % 11}-ü" for j in range(i % 4 + 1)))
    elif kind == "zset":
        pipe.zadd(key, {f"{name}-{j}": (i * j) / 4 for j in range(i % 4 + 1)})
    else:
        for j in range(i % 3 + 1):
            pipe.xadd(key, {"event": "login", "user": name, "n": str(j)}, id=f"{i + 1}-{j}")
    if i % SEED_TTL_EVERY == 3:
        pipe.expire(key, 86_400 + i)
