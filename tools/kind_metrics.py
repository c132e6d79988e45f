#!/usr/bin/env python3
"""How much shared code a store kind costs, measured on any commit (issue 16's before/after figures).

    python tools/kind_metrics.py                 # the working tree
    python tools/kind_metrics.py --rev 3969270   # a commit (read with `git archive`, nothing checked out)
    python tools/kind_metrics.py --rev A --rev B # both, side by side; --json for the raw figures

What it counts, statically (ast), in drill/ and steps/:
- shared files a new kind must edit: files that do not belong to one kind and hold a table or a
  branch keyed by kind: a literal dict/tuple/list/set with two or more kind ids or sentence names
  (UNITS, STORE_KINDS, KIND_NAMES...), a string with two or more sentence names as regex
  alternatives (the vocabulary's KINDS), or a `kind ==` / `kind !=` / `kind in (...)` test against
  a kind id. A file belongs to a kind when it lives in drill/stores/<kind>/ or its name carries the
  kind (drill/provision/local_redis.py, drill/stores/postgres_seed.py; pg_binaries.py and pitr.py
  are PostgreSQL's);
- dispatch sites outside kind modules: `getattr`/`hasattr` on a store (its first argument mentions
  "store") and the `kind` tests above;
- the largest classes and modules of drill/ (lines, docstrings and comments included).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

KIND_IDS = ("postgres", "mongodb", "redis", "volume", "gcs", "firestore")
KIND_NAMES = ("PostgreSQL", "MongoDB", "Redis", "Docker volume", "GCS", "Google Cloud Storage", "Firestore")
OWN_STEMS = {"postgres": ("pg_binaries", "pitr")}  # PostgreSQL's own modules whose names do not say so
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Figures:
    rev: str
    shared_files_to_add_a_kind: list[str] = field(default_factory=list)
    dispatch_sites: list[str] = field(default_factory=list)
    largest_classes: list[tuple[str, int]] = field(default_factory=list)
    largest_modules: list[tuple[str, int]] = field(default_factory=list)
    classes_over_250: int = 0
    modules_over_500: int = 0


def sources(rev: str | None) -> dict[str, str]:
    """path -> text of every .py file under drill/ and steps/, at `rev` (None: the working tree)."""
    if rev is None:
        return {str(p.relative_to(REPO)): p.read_text(encoding="utf-8")
                for top in ("drill", "steps") for p in sorted((REPO / top).rglob("*.py"))}
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev, "drill", "steps"],
                             capture_output=True, check=True).stdout
    found = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".py"):
                handle = tar.extractfile(member)
                assert handle is not None
                found[member.name] = handle.read().decode("utf-8")
    return found


def owner(path: str) -> str | None:
    """The kind a file belongs to, or None for shared code."""
    parts = Path(path).parts
    # Every package under drill/stores/ is a kind (the registry's own rule), those added since issue 16 too.
    if len(parts) > 3 and parts[:2] == ("drill", "stores"):
        return parts[2]
    stem = Path(path).stem
    for kind in KIND_IDS:
        if kind in stem or stem in OWN_STEMS.get(kind, ()):
            return kind
    return None


def _is_kind_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value in KIND_IDS + KIND_NAMES


def _mentions_kind(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id == "kind") or (isinstance(node, ast.Attribute)
                                                                   and node.attr == "kind")


def kind_tables(tree: ast.AST) -> list[int]:
    """Lines of literal tables or regex alternatives that list kinds."""
    lines = []
    for node in ast.walk(tree):
        items: list[ast.AST] = []
        if isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None] + list(node.values)
        elif isinstance(node, ast.Tuple | ast.List | ast.Set):
            items = list(node.elts)
        if sum(_is_kind_literal(i) for i in items) >= 2:
            lines.append(node.lineno)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            alternatives = set(node.value.replace("(", "|").replace(")", "|").split("|"))
            if len(alternatives & set(KIND_NAMES)) >= 2:
                lines.append(node.lineno)
    return sorted(set(lines))


def kind_tests(tree: ast.AST) -> list[int]:
    """Lines of `kind == "redis"`, `x.kind != "postgres"`, `kind in ("gcs", ...)`."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literal = any(_is_kind_literal(o) or (isinstance(o, ast.Tuple) and any(map(_is_kind_literal, o.elts)))
                          for o in operands)
            if literal and any(_mentions_kind(o) for o in operands):
                lines.append(node.lineno)
    return lines


def store_probes(tree: ast.AST, text: str) -> list[int]:
    """Lines of getattr/hasattr on a store: optional abilities discovered at run time."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                and node.args and "store" in (ast.get_source_segment(text, node.args[0]) or "")):
            lines.append(node.lineno)
    return lines


def measure(rev: str | None) -> Figures:
    figures = Figures(rev or "working tree")
    classes: list[tuple[str, int]] = []
    modules: list[tuple[str, int]] = []
    for path, text in sources(rev).items():
        tree = ast.parse(text, filename=path)
        if path.startswith("drill/"):
            modules.append((path, len(text.splitlines())))
            classes += [(f"{path}:{n.name}", (n.end_lineno or n.lineno) - n.lineno + 1)
                        for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        if owner(path) is not None or path.endswith("tools/kind_metrics.py"):
            continue
        tables, tests = kind_tables(tree), kind_tests(tree)
        if tables or tests:
            figures.shared_files_to_add_a_kind.append(path)
        figures.dispatch_sites += [f"{path}:{line} kind test" for line in tests]
        figures.dispatch_sites += [f"{path}:{line} getattr on a store" for line in store_probes(tree, text)]
    figures.largest_classes = sorted(classes, key=lambda c: -c[1])[:3]
    figures.largest_modules = sorted(modules, key=lambda m: -m[1])[:3]
    figures.classes_over_250 = sum(1 for _, n in classes if n > 250)
    figures.modules_over_500 = sum(1 for _, n in modules if n > 500)
    return figures


def show(all_figures: list[Figures]) -> None:
    rows = [("", *(f.rev for f in all_figures)),
            ("shared files to edit to add a kind (goal 0)", *(str(len(f.shared_files_to_add_a_kind))
                                                               for f in all_figures)),
            ("getattr/kind== dispatch sites outside kind modules (goal 0)", *(str(len(f.dispatch_sites))
                                                                                for f in all_figures)),
            ("largest class in drill/ (goal <= 250 lines)", *(f"{f.largest_classes[0][1]} {_short(f.largest_classes[0][0])}"
                                                               for f in all_figures)),
            ("largest module in drill/ (goal <= 500 lines)", *(f"{f.largest_modules[0][1]} {_short(f.largest_modules[0][0])}"
                                                                for f in all_figures)),
            ("classes over 250 lines", *(str(f.classes_over_250) for f in all_figures)),
            ("modules over 500 lines", *(str(f.modules_over_500) for f in all_figures))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for figures in all_figures:
        print(f"\n{figures.rev}:")
        for path in figures.shared_files_to_add_a_kind:
            print(f"  shared file keyed by kind: {path}")
        for site in figures.dispatch_sites:
            print(f"  dispatch site: {site}")


def _short(name: str) -> str:
    return name.removeprefix("drill/")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", action="append", default=[], help="a commit to measure (repeat to compare)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    all_figures = [measure(rev) for rev in args.rev] if args.rev else [measure(None)]
    if args.json:
        print(json.dumps([asdict(f) for f in all_figures], indent=2))
    else:
        show(all_figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
