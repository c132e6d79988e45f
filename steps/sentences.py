"""The whole vocabulary in one import, for code that imports this module to fill the registry.

The sentences live in drill.steps.<domain> and drill.steps.<kind> (drill/steps/__init__.py).
"""

from __future__ import annotations

from . import load  # relative: this package ships as drill.steps

load()
