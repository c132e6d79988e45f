"""reference/vocabulary.md: the sentences, store kinds, durations and tags, from the registries."""

from __future__ import annotations

import importlib
import inspect
from collections import defaultdict

from drill import vocabulary
from drill.config import DEFAULT_TIERS
from drill.durations import _UNIT_SECONDS, DURATION_HELP, format_duration
from drill.reference.markdown import GENERATED, code, prose, table
from drill.stores import capabilities, kinds

# Section titles of the domain modules, in drill.vocabulary.DOMAINS' order (a module missing here is titled by
# its name; a kind's own module by the kind).
TITLES = {
    "drill.steps.stores": "Stores and data",
    "drill.steps.backups": "Backups",
    "drill.steps.recovery": "RPO markers, disaster and recovery",
    "drill.steps.verification": "Verification and targets",
    "drill.steps.rollback": "Point-in-time recovery and rollback",
    "drill.steps.system": "Whole system and health checks",
}


def _kinds_with(capability: type) -> list[str]:
    return [spec.kind for spec in kinds.all_kinds().values() if spec.has(capability)]


def _needs(entry: vocabulary.Sentence) -> str:
    if entry.needs is None:
        return ""
    if isinstance(entry.needs, type):
        having = ", ".join(f"`{k}`" for k in _kinds_with(entry.needs)) or "none of the installed kinds"
        return f"Needs a store that {capabilities.phrase(entry.needs)}: {having}."
    why = inspect.getdoc(entry.needs) or "depends on its words"
    return f"What it needs of the store depends on its words: {why}"


def _what(entry: vocabulary.Sentence) -> str:
    parts = [f"**{entry.summary}**"]
    if entry.details:
        parts.append(entry.details)
    needs = _needs(entry)
    if needs:
        parts.append(f"*{needs}*")
    return " ".join(parts)


def _title(module: str) -> str:
    if module in TITLES:
        return TITLES[module]
    owners = [spec.display_name for spec in kinds.all_kinds().values() if module in spec.steps]
    if owners:
        return f"{' and '.join(owners)} stores only"
    return module.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def _intro(module: str) -> str:
    doc = inspect.getdoc(importlib.import_module(module)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _sentences() -> list[str]:
    vocabulary.load()
    by_module: dict[str, list[vocabulary.Sentence]] = defaultdict(list)
    for entry in vocabulary.REGISTRY:
        by_module[entry.module].append(entry)
    order = [m for m in vocabulary.step_modules() if m in by_module]
    order += sorted(set(by_module) - set(order))  # sentences bound outside the listed modules (plugins)
    lines: list[str] = []
    for module in order:
        lines += [f"## {_title(module)}", "", f"{prose(_intro(module))} (`{module}`)", ""]
        lines += table(["Example (verbatim)", "Keywords", "What it does"],
                       [[code(e.example), ", ".join(t.capitalize() for t in e.types), _what(e)]
                        for e in by_module[module]])
    return lines


def _kinds() -> list[str]:
    rows = []
    for spec in kinds.all_kinds().values():
        abilities = ", ".join(capabilities.phrase(c) for c in sorted(spec.capabilities, key=lambda c: c.__name__))
        rows.append([" / ".join(f"`{n}`" for n in spec.names), f"`{spec.kind}`", f"{spec.unit} ({spec.unit_one})",
                     spec.part_label, ", ".join(spec.provisioners), abilities or "-",
                     f"`{spec.extra}`" if spec.extra else "-", spec.summary])
    return ["## Store kinds", "",
            "The kinds installed when this page was built, as each declares itself (`drill.stores.<kind>`, or a "
            "package's `drill.stores` entry point). The name goes in `Given the <name> store \"...\"`, the kind in "
            "drill.toml's `kind`; the unit in `seeded with N <unit>` and `holds N <unit>`; `holds N <unit> in "
            "\"PART\"` counts one part.", "",
            *table(["Name in sentences", "`kind`", "Unit", "Part", "Provision", "Abilities", "Extra", "What"], rows)]


def _units() -> str:
    units = dict.fromkeys(spec.unit for spec in kinds.all_kinds().values())  # in the kinds' order, once each
    return ", ".join(f"`{unit}`" for unit in units)


def _durations() -> list[str]:
    by_seconds: dict[float, list[str]] = defaultdict(list)
    for unit, seconds in _UNIT_SECONDS.items():
        by_seconds[seconds].append(f"`{unit}`")
    return ["## Arguments", "",
            f"**Durations** (case-insensitive): {DURATION_HELP.removeprefix('write e.g. ')}; words such as "
            "`1.5 hours` or `1 hour and 30 minutes`, or the compact form, largest unit first (`1h30m`, `2m30s`). A "
            "bare number is not a duration.", "",
            *table(["Unit", "Written as"], [[format_duration(seconds), ", ".join(names)]
                                            for seconds, names in sorted(by_seconds.items())]),
            "**Counts** accept separators: `10000`, `10,000`, `10_000`.", "",
            f"**Units**: {_units()} (singular also accepted), one per kind ([Store kinds](#store-kinds)). A unit "
            "that does not fit the store kind is an error (\"a PostgreSQL store holds rows, not keys\").", "",
            "**Store names** are in double quotes and are identifiers, never connection strings or paths.", ""]


def _tags() -> list[str]:
    rows = [[f"`@tier:{name}`", f"RTO {format_duration(rto)}, RPO {format_duration(rpo)}"]
            for name, (rto, rpo) in DEFAULT_TIERS.items()]
    rows += [["`@tier:NAME`", "a tier defined or overridden in `[tiers.NAME]` of drill.toml"],
             ["`@rto:30m`", "an RTO target (any duration in the compact form: tags cannot hold spaces)"],
             ["`@rpo:1h`", "an RPO target"],
             ["`@control:SOC2-CC7.5`", "not a target: the scenario evidences the audit control declared as "
                                       "`[controls.\"SOC2-CC7.5\"]`"]]
    return ["## Tags", "",
            "Targets without a `Then` step. Tags on the Feature apply to all of its scenarios; tags are also "
            "pytest markers (`drill run --tags \"tier:critical and not slow\"`).", "", *table(["Tag", "Means"], rows)]


def vocabulary_page() -> str:
    lines = ["# Vocabulary", "", GENERATED.format(source="drill.vocabulary's registry and the store kinds"), "",
             "Every sentence drill understands, as `drill check` matches them. The Keywords column says which of "
             "Given/When/Then the sentence accepts; `And` and `But` continue the previous keyword. The examples are "
             "verbatim: the tests match each one against the sentence it documents. How to put them together: "
             "[Writing drills](../writing-drills.md).", "",
             *_sentences(), *_kinds(), *_durations(), *_tags()]
    return "\n".join(lines).rstrip() + "\n"
