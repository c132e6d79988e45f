"""The Gherkin vocabulary of drill (shipped as drill.steps): one module per domain, one per kind that has
sentences of its own (the kind names them in KindSpec.steps). Each step only converts its words
(pytest-bdd converters) and calls the DrillScenario."""

from __future__ import annotations

import importlib

# The domains of the vocabulary, in the order the README lists them.
MODULES = ("drill.steps.stores", "drill.steps.backups", "drill.steps.recovery", "drill.steps.verification",
           "drill.steps.rollback", "drill.steps.system")


def modules() -> list[str]:
    """Every step module: the domains', then those the store kinds bring."""
    from drill.stores import kinds

    return [*MODULES, *kinds.step_modules()]


def load() -> None:
    """Import every step module, which fills the vocabulary registry (drill check, the README test)."""
    for module in modules():
        importlib.import_module(module)
