"""The whole vocabulary in one import, for code that imports this module to fill the registry.

The sentences live in drill.steps.<domain> and drill.steps.<kind> (drill.vocabulary.step_modules()).
"""

from __future__ import annotations

from drill.vocabulary import load

load()
