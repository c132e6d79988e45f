"""The manual documents the public behaviour, and its examples work.

The reference pages are generated from the code (drill.reference, at every mkdocs build), so the tests check
what generation alone cannot: that every sentence's example, as printed on the page, is matched by the sentence
it documents; that every drill.toml key and every command is on its page, and that the generator refuses to
leave one out; that the command lines and TOML examples of the hand-written pages parse; that the README is a
short front door whose links resolve; that `mkdocs build --strict` passes; and that every page the manual
promises exists.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from drill import vocabulary
from drill.cli import _parser, _route_report_pack
from drill.config import _Validator, load_config
from drill.config_keys import TABLES
from drill.durations import parse_duration
from drill.errors import ConfigError
from drill.reference import pages
from drill.reference.cli import UndocumentedOption
from drill.reference.configuration import UndocumentedKey
from drill.reference.markdown import cell
from drill.stores import kinds
from tests.conftest import REPO

DOCS = REPO / "docs"
README = (REPO / "README.md").read_text(encoding="utf-8")
GENERATED = pages()
vocabulary.load()

# The pages issue 17 asks the manual to have (docs/<page>), and the store kinds' pages.
PAGES = {
    "getting started": "getting-started.md", "writing drills": "writing-drills.md",
    "measurement (RTO/RPO)": "measurement.md", "PITR, rollback and whole system": "recovery.md",
    "configuration": "configuration.md", "safety with live stores": "safety.md", "CLI": "cli.md",
    "backups and the repository": "backups.md", "results and reports": "results.md",
    "CI and scale": "ci.md", "writing a store kind": "writing-a-store-kind.md", "architecture": "architecture.md",
    "compatibility": "compatibility.md", "vocabulary (generated)": "reference/vocabulary.md",
    "configuration keys (generated)": "reference/configuration.md", "CLI (generated)": "reference/cli.md",
}
KIND_PAGES = {"postgres": "stores/postgres.md", "redis": "stores/redis.md", "mongodb": "stores/mongodb.md",
              "firestore": "stores/firestore.md", "gcs": "stores/gcs.md", "volume": "stores/volume.md"}


def _nav() -> list[str]:
    """Every page of mkdocs.yml's nav (the file is YAML; its nav lines are `- Title: path.md`)."""
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    return re.findall(r"^\s*- [^:]+: (\S+\.md)\s*$", text[text.index("\nnav:"):], re.M)


def _page(path: str) -> str:
    return GENERATED[path] if path in GENERATED else (DOCS / path).read_text(encoding="utf-8")


# --- the pages exist ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [*PAGES.values(), *KIND_PAGES.values()])
def test_every_page_of_the_manual_exists_and_is_in_the_nav(page: str) -> None:
    assert page in GENERATED or (DOCS / page).is_file(), f"docs/{page} is missing"
    assert page in _nav(), f"docs/{page} is not in mkdocs.yml's nav"


def test_every_store_kind_has_a_page() -> None:
    assert set(KIND_PAGES) <= set(kinds.all_kinds())
    assert {k for k, s in kinds.all_kinds().items() if s.kind in ("postgres", "redis", "mongodb", "firestore",
                                                                  "gcs", "volume")} == set(KIND_PAGES)


def test_every_nav_entry_is_a_page() -> None:
    for page in _nav():
        assert page in GENERATED or (DOCS / page).is_file(), f"mkdocs.yml's nav names docs/{page}, which is missing"


def test_mkdocs_build_strict_passes(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).parent / "mkdocs"
    assert mkdocs.is_file(), "mkdocs is not installed: ./dev installs the docs extra"
    done = subprocess.run([str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1",
                                                                              "PATH": str(mkdocs.parent)})
    assert done.returncode == 0, done.stdout + done.stderr
    for path in GENERATED:
        built = tmp_path / "site" / path.removesuffix(".md") / "index.html"
        assert built.is_file(), built


# --- the vocabulary page ------------------------------------------------------------------------------------


def _examples(markdown: str) -> list[str]:
    """The first column of every table row: the verbatim examples, as the page prints them."""
    return [m.group(1) for m in re.finditer(r"^\| `([^`]+)` \| (?:Given|When|Then)", markdown, re.M)]


def test_the_vocabulary_page_lists_every_sentence_once() -> None:
    examples = _examples(GENERATED["reference/vocabulary.md"])
    assert sorted(examples) == sorted(e.example for e in vocabulary.REGISTRY)


@pytest.mark.parametrize("example", _examples(GENERATED["reference/vocabulary.md"]))
def test_every_example_on_the_page_is_matched_by_the_sentence_it_documents(example: str) -> None:
    keyword, _, text = example.partition(" ")
    found = vocabulary.find(keyword.lower(), text)
    assert found is not None, f"drill check would not understand the documented example: {example}"
    entry, _ = found
    assert entry.example == example, f"{example!r} is matched by another sentence: {entry.example!r}"
    row = next(line for line in GENERATED["reference/vocabulary.md"].splitlines() if line.startswith(f"| `{example}`"))
    assert cell(entry.summary) in row and (not entry.details or cell(entry.details)[:60] in row)


@pytest.mark.parametrize("example", _examples(GENERATED["reference/vocabulary.md"]))
def test_the_arguments_of_every_example_are_accepted(example: str) -> None:
    """What drill check reads in a step's words, read in each example: durations, counts, kinds and units."""
    keyword, _, text = example.partition(" ")
    found = vocabulary.find(keyword.lower(), text)
    assert found is not None
    words = {k: v for k, v in found[1].groupdict().items() if v is not None}
    for key in ("duration", "interval"):
        if key in words:
            assert parse_duration(words[key]) > 0, example
    if "count" in words:
        assert vocabulary.parse_count(words["count"]) > 0, example
    if "kind" in words:
        assert kinds.by_sentence_name(words["kind"]).kind in kinds.all_kinds(), example
    if "unit" in words:
        assert any(words["unit"] in (s.unit, s.unit_one) for s in kinds.all_kinds().values()), example


def test_the_page_says_what_each_sentence_needs() -> None:
    page = GENERATED["reference/vocabulary.md"]
    row = next(line for line in page.splitlines() if line.startswith('| `When SQL is run on "userdb":`'))
    assert "*Needs a store that runs SQL: `postgres`.*" in row
    for spec in kinds.all_kinds().values():
        assert f"| `{spec.kind}` |" in page and spec.unit in page


# --- the configuration keys page ----------------------------------------------------------------------------


def _keys_of_table(page: str, header: str) -> set[str]:
    start = page.index(f"## `{header}`")
    end = page.find("\n## ", start + 1)
    section = page[start:end if end > 0 else None]
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.header)
def test_every_key_the_validator_accepts_is_on_the_page(table: object) -> None:
    from drill.config_keys import Table

    assert isinstance(table, Table)
    accepted = set(getattr(_Validator, table.validator_keys))
    on_page = _keys_of_table(GENERATED["reference/configuration.md"], table.header)
    assert accepted <= on_page, f"{table.header}: not on the page: {sorted(accepted - on_page)}"


def test_every_kind_key_is_on_the_page() -> None:
    page = GENERATED["reference/configuration.md"]
    for spec in kinds.all_kinds().values():
        section = page[page.index(f'#### `kind = "{spec.kind}"`'):]
        section = section[:section.find("\n#### ", 1) if "\n#### " in section[1:] else None]
        assert set(spec.options.key_names()) <= set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M)), spec.kind
    assert set(_Validator.STORE_KEYS) <= set(re.findall(r"^\| `([a-z_]+)` \|", page, re.M))


def test_a_key_the_validator_accepts_but_nobody_documented_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from drill.reference.configuration import configuration_page

    monkeypatch.setattr(_Validator, "NOTIFY_KEYS", _Validator.NOTIFY_KEYS | {"pager_duty_key"})
    with pytest.raises(UndocumentedKey, match=r"\[notify\]: accepted by drill.config but not documented in "
                                              r"drill/config_keys.py: pager_duty_key"):
        configuration_page()


def _toml_blocks(text: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", text, re.S)


def _hand_written() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md"))


@pytest.mark.parametrize("source", [*_hand_written(), REPO / "README.md"], ids=lambda p: str(p.relative_to(REPO)))
def test_the_toml_examples_load(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every drill.toml example of the manual is read by drill's validator as it is (a fragment with a table of
    its own is a complete file), or is at least valid TOML where it shows something that is not drill.toml."""
    monkeypatch.chdir(tmp_path)
    for block in _toml_blocks(source.read_text(encoding="utf-8")):
        data = tomllib.loads(block)
        if not set(data) <= _Validator.TOP_KEYS:
            continue  # e.g. a pyproject.toml entry point in writing-a-store-kind.md
        (tmp_path / "drill.toml").write_text(block, encoding="utf-8")
        try:
            load_config(tmp_path / "drill.toml")
        except ConfigError as exc:
            pytest.fail(f"{source.name}: a drill.toml example does not load: {exc}\n{block}")


# --- the command-line page ----------------------------------------------------------------------------------


def test_every_command_is_on_the_page() -> None:
    page = GENERATED["reference/cli.md"]
    for command in ("drill run", "drill list", "drill check", "drill report", "drill report pack", "drill status",
                    "drill keygen", "drill backup", "drill restore", "drill backups list", "drill backups verify",
                    "drill backups prune"):
        assert f"## `{command}`" in page, command
    for option in ("--drill-report-dir", "--drill-config", "--drill-profile", "--drill-run-id", "--drill-quiet"):
        assert f"`{option}`" in page, option


def test_an_option_without_help_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from drill import cli
    from drill.reference.cli import cli_page

    def parser() -> argparse.ArgumentParser:
        built = _parser()
        built.add_argument("--secret-switch", action="store_true")
        return built

    monkeypatch.setattr(cli, "_parser", parser)
    with pytest.raises(UndocumentedOption, match="'secret_switch' has no help text"):
        cli_page()


def _command_lines() -> list[tuple[str, str]]:
    """Every `drill ...` command in a shell or text block of the manual and the README: (where, command)."""
    found = []
    for source in [*_hand_written(), REPO / "README.md"]:
        for block in re.findall(r"```(?:sh|text)\n(.*?)```", source.read_text(encoding="utf-8"), re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    command = part.split("  #")[0].split(" >>")[0].strip()
                    if command.startswith("drill ") and "[" not in command and "…" not in command:
                        found.append((source.name, command))
    return found


@pytest.mark.parametrize(("where", "command"), _command_lines(), ids=lambda v: v)
def test_every_command_line_of_the_manual_parses(where: str, command: str) -> None:
    argv = shlex.split(command)[1:]
    try:
        _parser().parse_args(_route_report_pack(argv))
    except SystemExit as exc:
        pytest.fail(f"{where}: `{command}` is not a valid drill command line (argparse exited {exc.code})")


# --- the README ---------------------------------------------------------------------------------------------


def test_the_readme_is_a_short_front_door() -> None:
    assert len(README.splitlines()) < 250
    for section in ("## Install", "## The two commands", "## One drill", "## The manual"):
        assert section in README
    assert "pip install 'dr-drill[all]'" in README
    assert "![" in README and "docs/images/report.png" in README


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+?)(?: \{#([\w-]+)\})?\s*$", markdown, re.M)
    return {explicit or slugify(text.replace("`", ""), "-") for text, explicit in headings}


def test_the_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    assert len(links) > 20
    for link in links:
        if link.startswith(("http://", "https://")):
            continue
        path, _, anchor = link.partition("#")
        target = REPO / path
        assert target.exists(), f"README links to {link}, which does not exist"
        if anchor:
            assert anchor in _anchors(target.read_text(encoding="utf-8")), f"README: no #{anchor} in {path}"


def test_the_two_commands_are_in_the_readme_and_in_ci() -> None:
    assert "./dev drill" in README and "./dev test" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "./dev test" in ci and "./dev drill" in ci and "./dev docs" in ci


def test_no_install_hint_names_the_wrong_package() -> None:
    """`drill` on the package index is an unrelated XML library: every hint says dr-drill."""
    wrong = []
    for path in [*(REPO / "drill").rglob("*.py"), *(REPO / "steps").glob("*.py"), *_hand_written(),
                 *(REPO / "examples").rglob("*.y*ml"), REPO / "README.md", REPO / "dev", REPO / "pyproject.toml"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"(?<![\w-])drill\[", line) or re.search(r"pip install '?drill\b(?!-)", line):
                wrong.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not wrong, "\n".join(wrong)


# --- the report picture -------------------------------------------------------------------------------------


def test_the_report_picture_is_made_from_a_real_run(tmp_path: Path) -> None:
    """tests/report_picture.py, the script that made docs/images/report.png, run again: a real drill run's report
    in headless Chromium. DRILL_UPDATE_SCREENSHOTS=1 writes the new picture into docs/images/ too."""
    import os

    from tests.test_audit_evidence import _distinct_bytes, _png_size

    out = tmp_path / "report.png"
    done = subprocess.run([sys.executable, "-m", "tests.report_picture", str(out)], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    shot = out.read_bytes()
    if os.environ.get("DRILL_UPDATE_SCREENSHOTS") == "1":
        (DOCS / "images" / "report.png").write_bytes(shot)
    width, height = _png_size(shot)
    committed = _png_size((DOCS / "images" / "report.png").read_bytes())
    assert width == committed[0] == 1100 and 400 < height < 2000, (width, height, committed)
    assert _distinct_bytes(shot) > 20  # a drawn page, not one flat colour
    assert "docs/images/report.png" in README and "images/report.png" in (DOCS / "index.md").read_text()
