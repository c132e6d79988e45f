"""Reading .feature files for `drill list` and `drill check`, without running anything.

Parsing uses pytest-bdd's own parser, so what `check` accepts is what `run` will parse.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_bdd.exceptions import GherkinParseError
from pytest_bdd.parser import FeatureParser

from drill import vocabulary
from drill.config import Config
from drill.controls import control_ids, undeclared_tag_problems
from drill.durations import DurationError, format_duration, parse_duration
from drill.errors import ConfigError, FeatureError, UnsupportedStep
from drill.names import name_problem
from drill.provision.factory import check_live_url
from drill.stores import capabilities, kinds
from drill.targets import TagError, targets_from_tags

vocabulary.load()  # drill's sentences and those the store kinds bring


def find_features(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.feature")))
        elif path.is_file():
            found.append(path)
        else:
            raise FeatureError("no such file or directory: name a .feature file or a folder of them", path=path)
    if not found:
        raise FeatureError("no .feature files found here", path=", ".join(str(p) for p in paths))
    return found


@dataclass
class ScenarioInfo:
    path: Path
    line: int
    feature: str
    name: str
    tags: list[str]
    steps: list[Any]  # pytest_bdd.parser.Step (rendered for outlines)
    targets: list[str] = field(default_factory=list)


def parse_feature(path: Path) -> Any:
    try:
        return FeatureParser(str(path.parent.resolve()), path.name).parse()
    except GherkinParseError as exc:
        raise FeatureError(f"{exc.message}: {exc.line_content.strip()!r} — fix the Gherkin syntax "
                           f"(Feature:, Scenario:, Given/When/Then/And/But lines)",
                           path=path, line=exc.line) from None
    except UnicodeDecodeError as exc:
        raise FeatureError(f"not UTF-8 text ({exc.reason}); save the file as UTF-8", path=path) from None


def scenarios(path: Path) -> Iterator[ScenarioInfo]:
    feature = parse_feature(path)
    for template in feature.scenarios.values():
        tags = sorted(set(template.tags) | set(feature.tags))
        contexts: list[dict[str, Any]] = [ex for examples in template.examples for ex in examples.as_contexts()]
        for context in contexts or [{}]:
            rendered = template.render(context)
            yield ScenarioInfo(path, template.line_number, feature.name or path.stem, rendered.name, tags,
                               list(rendered.steps))


def load_plugins(config: Config) -> list[Any]:
    """Import the step plugins drill.toml names (`[drill] plugins`), found next to drill.toml first.

    Returns the pytest-bdd step contexts they define, so that `check` accepts their sentences.
    """
    if not config.plugins:
        return []
    if str(config.base_dir) not in sys.path:
        sys.path.insert(0, str(config.base_dir))
    from pytest_bdd.steps import step_function_context_registry  # no public listing of step definitions

    for name in config.plugins:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(f"cannot import step plugin {name!r}: {exc}", path=config.path,
                              key="drill.plugins") from None
    return [ctx for ctx in list(step_function_context_registry.values())
            if not getattr(ctx.step_func, "__module__", "").startswith("drill.")]


def check(paths: list[Path], config: Config, *,
          environment: bool = True) -> tuple[list[ScenarioInfo], list[FeatureError]]:
    """Every problem drill can see without running: syntax, undefined steps, stores, durations, tags, and (with
    `environment`, for `check` and `run`, not `list`) live stores whose `url_env` is unset or unusable."""
    errors: list[FeatureError] = []
    infos: list[ScenarioInfo] = []
    extra_steps = load_plugins(config)
    for path in find_features(paths):
        try:
            found = list(scenarios(path))
        except FeatureError as exc:
            errors.append(exc)
            continue
        if not found:
            errors.append(FeatureError("the feature has no scenarios", path=path))
        for info in found:
            infos.append(info)
            errors.extend(_check_scenario(info, config, extra_steps, environment))
    return infos, errors


def unevidenced_controls(infos: list[ScenarioInfo], config: Config) -> list[FeatureError]:
    """`drill check`: every control drill.toml declares that no scenario among `infos` is tagged with."""
    tagged = {control for info in infos for control in control_ids(info.tags)}
    return [FeatureError(f"control {c.id} ({c.title}) has no scenario: tag the drills that evidence it with "
                         f"@control:{c.id}, or remove its table", path=config.path or "drill.toml", line=c.line)
            for c in config.controls.values() if c.id not in tagged]


def _plugin_step(step: Any, extra_steps: list[Any]) -> bool:
    return any(ctx.type in (None, step.type) and ctx.parser.is_matching(step.name) for ctx in extra_steps)


def _check_scenario(info: ScenarioInfo, config: Config, extra_steps: list[Any],
                    environment: bool = True) -> list[FeatureError]:
    errors: list[FeatureError] = []
    try:
        info.targets = [f"{t.metric.upper()} {format_duration(t.target_seconds)} ({t.source})"
                        for t in targets_from_tags(info.tags, config)]
    except TagError as exc:
        errors.append(FeatureError(str(exc), path=info.path, line=info.line))
    errors.extend(FeatureError(problem, path=info.path, line=info.line)
                  for problem in undeclared_tag_problems(info.tags, config.controls))
    declared: dict[str, str] = {}
    for step in info.steps:
        found = vocabulary.find(step.type, step.name)
        if found is None:
            if not _plugin_step(step, extra_steps):
                errors.append(FeatureError(_undefined(step), path=info.path, line=step.line_number))
            continue
        entry, match = found
        groups = {k: v for k, v in match.groupdict().items() if v is not None}
        needed = entry.capability(groups)
        named = groups.get("store")
        if needed is not None and named in declared:
            spec = kinds.find(declared[named])
            if spec is not None and not spec.has(needed):
                message = capabilities.lacks(named, spec.kind, needed, f"`{step.keyword} {step.name}`")
                errors.append(UnsupportedStep(message, path=info.path, line=step.line_number))
        for key in ("duration", "interval"):
            if key in groups:
                try:
                    seconds = parse_duration(groups[key])
                except DurationError as exc:
                    errors.append(FeatureError(str(exc), path=info.path, line=step.line_number))
                    continue
                for prefix, metric in (("the recovery time is within", "RTO"), ("the data loss is at most", "RPO")):
                    if step.name.startswith(prefix):
                        info.targets.append(f"{metric} {format_duration(seconds)} (step at line {step.line_number})")
        for key, what in (("store", "store name"), ("other", "restore target")):
            if key == "store" and "kind" not in groups:
                continue  # a store's name is checked where it is declared
            problem = name_problem(groups[key]) if key in groups else None
            if problem is not None:
                errors.append(FeatureError(f"{what} {groups[key]!r} is refused: {problem}; use a plain name such as "
                                           f"\"userdb_restored\"", path=info.path, line=step.line_number))
        if "kind" in groups:
            kind, name = kinds.by_sentence_name(groups["kind"]).kind, groups["store"]
            if declared.get(name, kind) != kind:
                errors.append(FeatureError(
                    f"store {name!r} is declared again as a {groups['kind']} store; it is a {declared[name]} store "
                    f"in this scenario: give the other store its own name", path=info.path, line=step.line_number))
                continue
            try:
                store_config = config.store(name, kind)
                if environment:
                    check_live_url(store_config)
            except ConfigError as exc:
                errors.append(FeatureError(exc.detail, path=info.path, line=step.line_number))
            declared[name] = kind
            continue
        for key in ("store", "other"):
            name = groups.get(key)
            if name is None or name in declared:
                continue
            if key == "other" and "restored from its latest backup into" in step.name:
                declared[name] = declared.get(groups["store"], "?")
                continue
            errors.append(FeatureError(
                f"store {name!r} is used before it is declared: add `Given the PostgreSQL store \"{name}\"` "
                f"(or the store kind it is) earlier in the scenario or its Background",
                path=info.path, line=step.line_number))
    return errors


def _undefined(step: Any) -> str:
    examples = [s.example for s in vocabulary.REGISTRY]
    close = difflib.get_close_matches(f"{step.keyword} {step.name}", examples, n=2, cutoff=0.5)
    hint = f"; did you mean: {' | '.join(close)}" if close else "; see the vocabulary (docs/reference/vocabulary.md)"
    return f"undefined step: {step.keyword} {step.name}{hint}"
