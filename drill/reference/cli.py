"""reference/cli.md: every command and option of `drill`, read from its argparse parser; the pytest options."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from drill.errors import DrillError
from drill.reference.markdown import GENERATED, prose, table

WIDTH = 100  # usage lines wrap here, whatever the terminal of the build


class UndocumentedOption(DrillError):
    """An argument without help text: the CLI reference would have nothing to say about it."""


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser's commands, depth first, each once (argparse lists aliases under the same parser)."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield sub
                    yield from _commands(sub)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _help_of(parser: argparse.ArgumentParser) -> dict[int, str]:
    """Each command parser's help line, as its parent's subparsers action holds it."""
    found: dict[int, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                found[id(sub)] = choice.help or ""
                found.update(_help_of(sub))
    return found


def _arguments(parser: argparse.ArgumentParser) -> list[list[str]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if not action.help:
            raise UndocumentedOption(f"`{parser.prog}`: the argument {action.dest!r} has no help text; give it "
                                     "help=... (the CLI reference and --help show it)")
        names = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.metavar or action.dest.upper()}`"
        if action.option_strings and action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
        default = action.default
        shown = "" if default in (None, False, [], argparse.SUPPRESS) else f"`{default}`"
        choices = f" One of: {', '.join(f'`{c}`' for c in action.choices)}." if action.choices else ""
        rows.append([names, f"{action.help % {'default': default, 'prog': parser.prog}}{choices}", shown])
    return rows


@dataclass
class _Recorder:
    """Stands in for pytest's parser to read the options drill's plugin adds (pytest_addoption)."""

    options: list[tuple[str, str]] = field(default_factory=list)

    def getgroup(self, *_args: Any, **_kwargs: Any) -> _Recorder:
        return self

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.append((", ".join(f"`{n}`" for n in names), str(kwargs.get("help", ""))))

    def addini(self, *_args: Any, **_kwargs: Any) -> None:
        return None


def _pytest_options() -> list[str]:
    from drill import plugin

    recorder = _Recorder()
    plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    return ["## pytest options", "",
            "drill is also a pytest plugin (the `pytest11` entry point): under plain pytest these options set what "
            "`drill run` sets itself ([From plain pytest](../getting-started.md#from-plain-pytest)).", "",
            *table(["Option", "Meaning"], [[names, text] for names, text in recorder.options])]


def cli_page() -> str:
    from drill.cli import _parser

    parser = _parser()
    helps = _help_of(parser)
    lines = ["# Command line", "", GENERATED.format(source="the argparse parser of drill.cli"), "",
             "Every command and option of `drill`, as `drill COMMAND --help` prints them. What the commands do, "
             "their output and exit codes: [CLI](../cli.md); `drill backup`, `restore` and `backups`: "
             "[Backups and the repository](../backups.md).", "",
             "## `drill`", "", "```text", _usage(parser), "```", "",
             *table(["Argument", "Meaning", "Default"], _arguments(parser))]
    for command in _commands(parser):
        lines += [f"## `{command.prog}`", "", prose(helps.get(id(command), "")), "", "```text", _usage(command), "```",
                  ""]
        rows = _arguments(command)
        lines += table(["Argument", "Meaning", "Default"], rows) if rows else []
    lines += _pytest_options()
    return "\n".join(lines).rstrip() + "\n"
