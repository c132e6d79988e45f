"""The README documents the public behaviour: every sentence, every CLI command, every configuration key."""

from __future__ import annotations

import importlib
import re

import pytest

from drill import vocabulary
from drill.config import _Validator
from tests.conftest import REPO

importlib.import_module("drill.steps.sentences")
README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("entry", vocabulary.REGISTRY, ids=lambda e: e.example)
def test_every_sentence_is_documented_with_a_working_example(entry: vocabulary.Sentence) -> None:
    assert entry.example in README, f"README lacks the example: {entry.example}"
    keyword, _, text = entry.example.partition(" ")
    assert keyword.lower() in entry.types
    assert entry.match(text), f"the example does not match its own pattern: {entry.example}"


@pytest.mark.parametrize("key", sorted(_Validator.DRILL_KEYS | _Validator.TIER_KEYS | _Validator.STORE_KEYS
                                      | _Validator.PROFILE_KEYS | _Validator.CONTROL_KEYS))
def test_every_configuration_key_is_documented(key: str) -> None:
    assert re.search(rf"`{key}`", README), f"README does not document the drill.toml key `{key}`"


@pytest.mark.parametrize("command", ["drill run", "drill list", "drill check", "drill report",
                                     "drill report pack", "drill report pack --verify", "drill status"])
def test_every_cli_command_is_documented(command: str) -> None:
    assert command in README


def test_the_two_commands_are_in_the_readme_and_in_ci() -> None:
    assert "./dev drill" in README and "./dev test" in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "./dev test" in ci and "./dev drill" in ci
