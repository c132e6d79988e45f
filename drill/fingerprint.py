"""Content fingerprints, the same shape for every store kind, and the comparison that names differences.

A store splits its data into *parts* (tables, collections, key-spaces, buckets, directories). Each
part has a count, an order-independent content hash and a schema: named items (columns, indexes,
constraints...) with their definitions. `extras` hold store-wide values such as sequence positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PartPrint:
    count: int
    content: str
    schema: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Fingerprint:
    kind: str  # the store kind that took it
    part_label: str  # what a part is called in messages: table, collection, key-space...
    unit: str  # rows, documents, keys, objects, files
    parts: dict[str, PartPrint]
    extras: dict[str, str] = field(default_factory=dict)
    taken_at: float = 0.0

    @property
    def total(self) -> int:
        return sum(p.count for p in self.parts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "part_label": self.part_label, "unit": self.unit, "taken_at": self.taken_at,
            "total": self.total,
            "parts": {name: {"count": p.count, "content": p.content, "schema": dict(sorted(p.schema.items()))}
                      for name, p in sorted(self.parts.items())},
            "extras": dict(sorted(self.extras.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fingerprint:
        return cls(
            kind=data["kind"], part_label=data["part_label"], unit=data["unit"],
            taken_at=float(data.get("taken_at", 0.0)),
            parts={name: PartPrint(int(p["count"]), str(p["content"]), dict(p.get("schema", {})))
                   for name, p in data["parts"].items()},
            extras=dict(data.get("extras", {})),
        )


@dataclass(frozen=True)
class Difference:
    part: str
    what: str  # missing | unexpected | count | content | schema | extra
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"part": self.part, "what": self.what, "message": self.message}


def compare(expected: Fingerprint, actual: Fingerprint) -> list[Difference]:
    """Every way `actual` differs from `expected`, each as a sentence naming the part and the change."""
    label = expected.part_label
    unit = expected.unit
    out: list[Difference] = []
    for name in sorted(expected.parts.keys() - actual.parts.keys()):
        count = expected.parts[name].count
        out.append(Difference(name, "missing", f"{label} {name}: missing (it held {count} {unit} at the backup)"))
    for name in sorted(actual.parts.keys() - expected.parts.keys()):
        out.append(Difference(name, "unexpected",
                              f"{label} {name}: present now but not at the backup "
                              f"({actual.parts[name].count} {unit})"))
    for name in sorted(expected.parts.keys() & actual.parts.keys()):
        before, after = expected.parts[name], actual.parts[name]
        out.extend(_schema_differences(label, name, before.schema, after.schema))
        if before.count != after.count:
            delta = after.count - before.count
            change = f"{-delta} missing" if delta < 0 else f"{delta} extra"
            out.append(Difference(name, "count", f"{label} {name}: {before.count} {unit} at the backup, "
                                                 f"{after.count} now ({change})"))
        elif before.content != after.content:
            out.append(Difference(name, "content",
                                  f"{label} {name}: content differs with the same count ({after.count} {unit}): "
                                  f"at least one changed"))
    for key in sorted(expected.extras.keys() | actual.extras.keys()):
        was, now = expected.extras.get(key), actual.extras.get(key)
        if was != now:
            out.append(Difference(key, "extra", f"{key}: {was if was is not None else 'absent'} at the backup, "
                                                f"{now if now is not None else 'absent'} now"))
    return out


def mismatch_message(name: str, source: str, backup_id: str, differences: Sequence[Difference],
                     details: Sequence[str] = ()) -> str:
    """The failure of "NAME matches the state of SOURCE at the backup": every difference, then the details a kind
    adds (which documents or objects), one per line."""
    listed = "".join(f"\n  - {d.message}" for d in differences) + "".join(f"\n  - {line}" for line in details)
    return f"{name!r} does not match the state of {source!r} at backup {backup_id}:{listed}"


def _schema_differences(label: str, part: str, before: dict[str, str], after: dict[str, str]) -> list[Difference]:
    out = []
    for item in sorted(before.keys() - after.keys()):
        out.append(Difference(part, "schema", f"{label} {part}: {item} missing (was: {before[item]})"))
    for item in sorted(after.keys() - before.keys()):
        out.append(Difference(part, "schema", f"{label} {part}: {item} added (now: {after[item]})"))
    for item in sorted(before.keys() & after.keys()):
        if before[item] != after[item]:
            out.append(Difference(part, "schema", f"{label} {part}: {item} changed "
                                                  f"(was: {before[item]}; now: {after[item]})"))
    return out
