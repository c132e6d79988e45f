"""mkdocs hook: the reference pages, generated from drill's own registries at every build (drill.reference).

They are never written into docs/, so nobody edits them by hand and they cannot drift from the code: a
sentence, a drill.toml key or a command added to drill appears on them at the next build, and a key or
option without documentation fails the build (drill.reference raises, naming it).
"""

from __future__ import annotations

from typing import Any

from mkdocs.structure.files import File, Files

from drill.reference import pages


def on_files(files: Files, config: Any) -> Files:
    for path, markdown in pages().items():
        files.append(File.generated(config, path, content=markdown))
    return files
