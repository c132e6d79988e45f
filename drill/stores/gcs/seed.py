"""GCS seed data: the runbook's asset, model and data objects, deterministic per index."""

from __future__ import annotations

import json
import random

# -- seed data ----------------------------------------------------------------------------------------------

_PEOPLE = ("Zoë", "José", "Łukasz", "Ångström", "Søren", "Nguyễn", "Μαρία", "Дмитрий", "李雷", "محمد")
_FRAMES = ("aviator", "wayfarer", "round", "cat-eye", "rimless", "browline", "oval", "square")
_LANGS = ("en", "de", "fr", "ja", "pt-BR")


def _seed_object(i: int) -> tuple[str, bytes, str, dict[str, str], dict[str, str]]:
    """(name, bytes, content type, metadata, headers) of seed object i: the runbook's asset/model/data mix."""
    rng = random.Random(i)
    person = _PEOPLE[i % len(_PEOPLE)]
    frame = _FRAMES[i % len(_FRAMES)]
    size = 64 + (i * 7919) % 1400
    if i == 0:  # the runbook's critical files (GCS_CRITICAL_FILES)
        return ("models/face-analysis-v2.0/model.pb", b"\x08\x01\x12\x0bface-v2.0" + rng.randbytes(48_000),
                "application/octet-stream", {"framework": "tensorflow", "version": "2.0", "critical": "true"}, {})
    if i == 1:
        config = {"environment": "production", "model": "models/face-analysis-v2.0/model.pb",
                  "regions": ["us-central1", "europe-west4"], "owner": person}
        return ("config/production.json", json.dumps(config, ensure_ascii=False, indent=2).encode(),
                "application/json", {"critical": "true"}, {"cache_control": "no-cache"})
    kind = i % 10
    sku = f"SKU-{i * 37 % 100_000:05d}"
    if kind <= 3:
        view = ("front", "side", "top", "worn")[kind]
        body = b"\xff\xd8\xff\xe0\x00\x10JFIF" + rng.randbytes(size * (16 if i % 25 == 0 else 1))
        return (f"images/products/{frame}/{sku}/{view}-{i}.jpg", body, "image/jpeg",
                {"sku": sku, "uploaded-by": person, "view": view}, {"cache_control": "public, max-age=86400"})
    if kind == 4:
        return (f"images/thumbnails/{sku}-{i}-256.webp", b"RIFF" + rng.randbytes(size // 2) + b"WEBP", "image/webp",
                {"sku": sku}, {"cache_control": "public, max-age=604800"})
    if kind == 5:
        return (f"models/frame-fit-v{i % 3 + 1}.{i % 7}/checkpoint-{i:06d}.bin", rng.randbytes(size * 2),
                "application/octet-stream", {"framework": "pytorch", "val-accuracy": f"{0.8 + (i % 200) / 1000:.3f}"},
                {})
    if kind == 6:
        lines = ["session_id,user,frame,duration_s"] + [
            f"{i}-{j},{_PEOPLE[(i + j) % len(_PEOPLE)]},{_FRAMES[j % len(_FRAMES)]},{(i * j) % 600}"
            for j in range(size // 40 + 1)]
        return (f"data/exports/2025-03-{i % 28 + 1:02d}/sessions {i:06d}.csv", "\n".join(lines).encode(),
                "text/csv; charset=utf-8", {"exported-by": "nightly-export", "rows": str(len(lines) - 1)},
                {"content_disposition": f'attachment; filename="sessions-{i}.csv"'})
    if kind == 7:
        events = [{"event": "try-on", "user": person, "frame": frame, "n": j} for j in range(size // 60 + 1)]
        return (f"data/events/2025/{i % 12 + 1:02d}/events-{i:06d}.json",
                json.dumps(events, ensure_ascii=False).encode(), "application/json", {"schema": "v3"}, {})
    if kind == 8:
        lang = _LANGS[(i // 10) % len(_LANGS)]
        text = f"# Anpassung für {person} — {frame}\n\n" + "Brillengläser, café, 日本語 ✓\n" * (size // 40 + 1)
        return (f"docs/{lang}/fitting-guide-zürich-{i}.md", text.encode(), "text/markdown; charset=utf-8",
                {"author": person}, {"content_language": lang.split("-")[0]})
    return (f"config/stores/store-{i:06d}.yaml", f"store: {i}\nmanager: {person}\nframes: [{frame}]\n".encode(),
            "application/yaml", {}, {})
