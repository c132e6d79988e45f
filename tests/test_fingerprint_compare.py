"""The comparison logic alone (the fingerprints themselves are taken from real servers elsewhere)."""

from __future__ import annotations

from drill.fingerprint import Fingerprint, PartPrint, compare


def fp(parts: dict[str, PartPrint], extras: dict[str, str] | None = None) -> Fingerprint:
    return Fingerprint("postgres", "table", "rows", parts, extras or {})


def test_identical_fingerprints_have_no_differences() -> None:
    a = fp({"public.t": PartPrint(3, "abc", {"column id": "#1 bigint"})}, {"sequence s": "3"})
    assert compare(a, Fingerprint.from_dict(a.to_dict())) == []


def test_each_kind_of_difference_is_named() -> None:
    before = fp({"public.a": PartPrint(3, "x", {"index a_idx": "CREATE INDEX a_idx ON a (v)"}),
                 "public.b": PartPrint(2, "y"), "public.c": PartPrint(5, "z")}, {"sequence s": "5"})
    after = fp({"public.a": PartPrint(3, "x2", {}), "public.c": PartPrint(4, "w"), "public.d": PartPrint(1, "q")},
               {"sequence s": "9"})
    messages = [d.message for d in compare(before, after)]
    assert messages == [
        "table public.b: missing (it held 2 rows at the backup)",
        "table public.d: present now but not at the backup (1 rows)",
        "table public.a: index a_idx missing (was: CREATE INDEX a_idx ON a (v))",
        "table public.a: content differs with the same count (3 rows): at least one changed",
        "table public.c: 5 rows at the backup, 4 now (1 missing)",
        "sequence s: 5 at the backup, 9 now",
    ]
