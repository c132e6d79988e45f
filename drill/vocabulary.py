"""The Gherkin vocabulary as data: every sentence drill understands, with a summary and an example.

steps/ binds each sentence to pytest-bdd with `sentence(...)`; `drill check` matches feature
steps against this registry without running anything, validates the arguments it knows
(durations, store kinds, counts), and the reference page docs/reference/vocabulary.md is generated
from exactly this list (drill.reference): the summary, and the step function's docstring as details.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_bdd import given, parsers, then, when

from drill.stores import kinds

F = TypeVar("F", bound=Callable[..., Any])

STORE = r'"(?P<store>[^"]+)"'
# Built from the kinds' declarations (drill.stores.kinds): a kind added is a kind named in sentences.
KINDS = rf"(?P<kind>{kinds.names_pattern()})"
UNITS = rf"(?P<unit>{kinds.units_pattern()})"
COUNT = r"(?P<count>\d[\d,_]*)"


# What a sentence needs of the store it names: a capability (drill.stores.capabilities), or a function of
# the sentence's words that says which one (None: nothing beyond the Store contract).
Needs = type | Callable[[dict[str, str]], type | None] | None


@dataclass(frozen=True)
class Sentence:
    types: tuple[str, ...]  # given / when / then
    pattern: str
    summary: str
    example: str  # one full line as it appears in a feature, keyword included
    needs: Needs = None
    details: str = ""  # the step function's docstring: what the reference page says beyond the summary
    module: str = ""  # the step module that binds it (the reference page groups sentences by module)
    function: str = ""  # "module.function" of the step function (drill.provision.sharing names sentences so)

    def capability(self, groups: dict[str, str]) -> type | None:
        """The capability the store named in these words must have, if any."""
        if self.needs is None or isinstance(self.needs, type):
            return self.needs
        return self.needs(groups)

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)

    def match(self, text: str) -> re.Match[str] | None:
        return self.regex.fullmatch(text)


# The vocabulary's step modules (steps/, shipped as drill.steps): one per domain, in the reference page's order. Kinds
# add their own (KindSpec.steps).
DOMAINS = ("drill.steps.stores", "drill.steps.backups", "drill.steps.recovery", "drill.steps.verification",
           "drill.steps.rollback", "drill.steps.system")


def step_modules() -> list[str]:
    """Every step module: the domains', then those the store kinds bring (the plugin registers them)."""
    return [*DOMAINS, *kinds.step_modules()]


def load() -> None:
    """Import every step module, which fills the registry (drill check, the reference pages)."""
    for module in step_modules():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise kinds.KindError(f"the sentences {module} cannot be imported: {exc}") from None


REGISTRY: list[Sentence] = []
_DECORATORS = {"given": given, "when": when, "then": then}


def sentence(types: str, pattern: str, summary: str, example: str, *, needs: Needs = None,
             converters: dict[str, Callable[[str], object]] | None = None) -> Callable[[F], F]:
    """Register a sentence and bind it to pytest-bdd for each of its step types ("given when").

    `needs` is what the sentence asks of the store it names (`drill check` reports a store whose kind
    does not declare it); `converters` turn its words into the step's arguments (pytest-bdd converters),
    e.g. {"count": parse_count}."""
    step_types = tuple(types.split())
    entry = Sentence(step_types, pattern, summary, example, needs)
    position = len(REGISTRY)
    REGISTRY.append(entry)

    def bind(func: F) -> F:
        REGISTRY[position] = dataclasses.replace(entry, details=inspect.getdoc(func) or "", module=func.__module__,
                                                 function=f"{func.__module__}.{func.__qualname__}")
        for step_type in step_types:
            # stacklevel=2: pytest-bdd puts the step fixture into the module that uses @sentence.
            _DECORATORS[step_type](parsers.re(pattern), converters=converters, stacklevel=2)(func)
        return func

    return bind


def find(step_type: str, text: str) -> tuple[Sentence, re.Match[str]] | None:
    for entry in REGISTRY:
        if step_type in entry.types:
            match = entry.match(text)
            if match:
                return entry, match
    return None


def parse_count(text: str) -> int:
    return int(text.replace(",", "").replace("_", ""))
