"""The name drill is installed under, and the install line an error message gives.

The import package and the command are `drill`; the distribution on the package index is `dr-drill`,
because `drill` there belongs to an unrelated XML library. Every "pip install ..." hint is built here,
so that no message sends a user to the wrong package.
"""

from __future__ import annotations

NAME = "dr-drill"


def install_hint(extra: str) -> str:
    """The command that installs drill with one of its extras, e.g. pip install 'dr-drill[crypto]'."""
    return f"pip install '{NAME}[{extra}]'"
