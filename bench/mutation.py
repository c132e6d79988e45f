"""Mutation score of the code that decides pass or fail (`./dev mutate`; docs/testing.md has the figures).

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) on the modules and functions in SCOPE and
prints, per module, how many mutants the tests killed and which survived. The tests it runs are the
fast in-process ones named in [tool.mutmut] pytest_add_cli_args_test_selection.

    python bench/mutation.py                 # the score with the current tests
    python bench/mutation.py --before        # the same mutants against the tests as they were before
                                             # tests/test_decisions.py (issue 19): the "before" figure
    python bench/mutation.py --out FILE      # also write the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Whole modules, and in the big store modules only the functions that make or compare fingerprints.
SCOPE = [
    "drill.clock.*", "drill.targets.*", "drill.fingerprint.*", "drill.durations.*", "drill.retention.*",
    "drill.rpo.*",
    # MongoDB: document hashes, index schema, the explanation of a difference.
    "drill.stores.mongodb.fingerprint.x_document_hash*", "drill.stores.mongodb.fingerprint.x__canonical*",
    "drill.stores.mongodb.fingerprint.x_key_spec*", "drill.stores.mongodb.fingerprint.x_index_schema*",
    "drill.stores.mongodb.fingerprint.x__field_digests*", "drill.stores.mongodb.fingerprint.x__field_changes*",
    "drill.stores.mongodb.fingerprint.x__type_name*", "drill.stores.mongodb.fingerprint.x__id_text*",
    "drill.stores.mongodb.fingerprint.x__id_key*",
    "drill.stores.mongodb.fingerprint.xǁ_Accumulatorǁ*",
    # Redis: the canonical value of each key type.
    "drill.stores.redis.fingerprint.x__canonical*", "drill.stores.redis.fingerprint.x__b*",
    # Firestore: typed values, parts and the fingerprint builder.
    "drill.stores.firestore.codec.x_part_of*", "drill.stores.firestore.codec.x_encoded_type*",
    "drill.stores.firestore.codec.x_canonical*", "drill.stores.firestore.codec.xǁ_Partǁ*",
    "drill.stores.firestore.codec.xǁFingerprintBuilderǁ*",
]

STATUS = {1: "killed", 0: "survived", 33: "no tests", 34: "skipped", 36: "timeout", 37: "timeout",
          -24: "timeout", -11: "segfault", -9: "killed (signal)", 5: "no tests", None: "not checked"}
DETECTED = {"killed", "timeout", "segfault", "killed (signal)"}  # the test run did not pass: the mutant was caught

NEW_TESTS = '"tests/test_decisions.py", '


def _mutmut() -> Path:
    found = Path(sys.executable).parent / "mutmut"
    if not found.exists():
        raise SystemExit("mutmut is not installed: pip install -e '.[dev]' (./dev mutate does it)")
    return found


def _results() -> dict[str, str]:
    """mutant name -> status, from the .meta files mutmut writes beside each mutated module."""
    out: dict[str, str] = {}
    for meta in (REPO / "mutants").rglob("*.py.meta"):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            out[name] = STATUS.get(code, f"exit {code}")
    return out


def _in_scope(name: str) -> bool:
    return any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), name) for p in SCOPE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", action="store_true", help="run without tests/test_decisions.py")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    pyproject = REPO / "pyproject.toml"
    original = pyproject.read_text()
    if args.before and NEW_TESTS not in original:
        raise SystemExit(f"pyproject.toml's [tool.mutmut] selection no longer names {NEW_TESTS.strip(', ')}")
    shutil.rmtree(REPO / "mutants", ignore_errors=True)  # results are cached by function: start clean
    started = time.monotonic()
    try:
        if args.before:
            pyproject.write_text(original.replace(NEW_TESTS, "", 1))
        subprocess.run([str(_mutmut()), "run", *SCOPE], cwd=REPO, stdout=subprocess.DEVNULL, check=False)
    finally:
        pyproject.write_text(original)
    seconds = time.monotonic() - started
    results = {name: status for name, status in _results().items() if _in_scope(name)}
    by_module: dict[str, Counter[str]] = {}
    for name, status in results.items():
        module = name.split(".x", 1)[0] if ".x" in name else name.rsplit(".", 1)[0]
        by_module.setdefault(module, Counter())[status] += 1
    print(f"mutation testing ({'tests before issue 19' if args.before else 'current tests'}): {seconds:.0f} s")
    print(f"{'module':40} {'mutants':>8} {'caught':>8} {'survived':>9} {'score':>7}")
    total = Counter[str]()
    for module, counts in sorted(by_module.items()):
        total.update(counts)
        count = sum(counts.values())
        caught = sum(n for status, n in counts.items() if status in DETECTED)
        print(f"{module:40} {count:8} {caught:8} {count - caught:9} {100 * caught / count:6.1f}%")
    count = sum(total.values())
    caught = sum(n for status, n in total.items() if status in DETECTED)
    print(f"{'all':40} {count:8} {caught:8} {count - caught:9} {100 * caught / max(count, 1):6.1f}%")
    survivors = sorted(name for name, status in results.items() if status not in DETECTED)
    for name in survivors:
        print(f"  {results[name]}: {name}")
    if args.out:
        args.out.write_text(json.dumps({"before": args.before, "seconds": seconds,
                                        "modules": {m: dict(c) for m, c in by_module.items()},
                                        "survivors": {n: results[n] for n in survivors}}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
