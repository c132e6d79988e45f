"""The reference pages of the manual, generated from the code's own registries so that they cannot drift.

- reference/vocabulary.md: every sentence of drill.vocabulary's registry (summary, the step's docstring,
  what it needs of a store), the store kinds as they declare themselves, durations, units and tags;
- reference/configuration.md: every drill.toml key the validator accepts (drill.config_keys says what
  drill's own keys mean; each kind documents its own keys in its KindOptions);
- reference/cli.md: every command and option of the argparse parser, and the pytest plugin's options.

docs/hooks.py adds them to the mkdocs build; tests/test_docs.py runs their examples.
"""

from __future__ import annotations

from collections.abc import Callable

from drill.reference.cli import cli_page
from drill.reference.configuration import configuration_page
from drill.reference.vocabulary import vocabulary_page

PAGES: dict[str, Callable[[], str]] = {
    "reference/vocabulary.md": vocabulary_page,
    "reference/configuration.md": configuration_page,
    "reference/cli.md": cli_page,
}


def pages() -> dict[str, str]:
    """Every generated page: its path under docs/ -> its Markdown."""
    return {path: build() for path, build in PAGES.items()}
