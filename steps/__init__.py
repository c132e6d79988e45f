"""The Gherkin vocabulary of drill (shipped as drill.steps): one module per domain, one per kind that has
sentences of its own (the kind names it in KindSpec.steps). Each step only converts its words (pytest-bdd
converters) and calls the DrillScenario. drill.vocabulary.step_modules() lists them all."""
