"""Store kinds that describe themselves, and the one registry built from their declarations.

A kind is a package whose `__init__` declares `KIND = KindSpec(...)`: its names in sentences and
in drill.toml, its unit and part label, its provisioners, its own drill.toml keys (a KindOptions
dataclass) and its capabilities. drill's own kinds are the packages under drill/stores/; another
distribution ships one through the `drill.stores` entry-point group
(docs/writing-a-store-kind.md). Everything that used to be a hand-kept table (units, sentence
names, the `kind` values drill.toml accepts, the vocabulary's patterns, the provision dispatch)
is built here from those declarations, so adding a kind changes no shared file.

The declaration module must stay light (no client libraries): drill reads every kind's
declaration to validate drill.toml and to build the vocabulary, and imports a kind's adapter only
when a store of that kind is provisioned.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import pkgutil
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self

from drill.errors import DrillError
from drill.fingerprint import Fingerprint, PartPrint

if TYPE_CHECKING:
    from drill.config import StoreConfig

ENTRY_POINT_GROUP = "drill.stores"
PROVISION_MODES = ("local", "container", "live")


class KindError(DrillError):
    """A kind's declaration is wrong, or two kinds claim the same name."""


class OptionError(ValueError):
    """A kind's drill.toml key has a bad value; drill.toml's reader adds the file and line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


# -- a kind's own drill.toml keys ------------------------------------------------------------------------

Reader = Callable[[Any], Any]  # a drill.toml value -> the option's value; raises ValueError(message)


def option(default: Any, read: Reader, doc: str) -> Any:
    """One drill.toml key of a kind: its default, how its value is read and checked, what it means."""
    return field(default=default, metadata={"read": read, "doc": doc})


def text(value: Any) -> str:
    if not (isinstance(value, str) and value):
        raise ValueError("must be a non-empty string")
    return value


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def whole(minimum: int) -> Reader:
    def read(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"must be a whole number of at least {minimum}")
        return value

    return read


def names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of strings")
    return tuple(value)


def matching(pattern: str, message: str) -> Reader:
    """A string that matches `pattern` entirely; otherwise `message` (what it must be, with an example)."""
    regex = re.compile(pattern)

    def read(value: Any) -> str:
        if not (isinstance(value, str) and regex.fullmatch(value)):
            raise ValueError(message)
        return value

    return read


@dataclass(frozen=True)
class KindOptions:
    """A kind's own drill.toml keys: subclass it as a frozen dataclass whose fields are `option(...)`s.

    drill.toml's reader checks every key of `[stores.NAME]` that is not a common key against the
    kind's fields, reads each value with its reader, then calls `check` for rules that span keys.
    """

    @classmethod
    def key_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def docs(cls) -> dict[str, str]:
        return {f.name: str(f.metadata.get("doc", "")) for f in dataclasses.fields(cls)}

    @classmethod
    def read(cls, data: Mapping[str, Any], base: Self | None = None) -> Self:
        """The options `data` sets (others from `base`, else their defaults); OptionError names a bad key."""
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name in data:
                reader: Reader = item.metadata.get("read", _as_is)
                try:
                    values[item.name] = reader(data[item.name])
                except ValueError as exc:
                    raise OptionError(item.name, str(exc)) from None
        return dataclasses.replace(base, **values) if base is not None else cls(**values)

    def check(self, store: StoreConfig) -> None:
        """Rules between keys (or with the common ones, e.g. provision); raise OptionError(key, message)."""
        return None

    def throwaway(self) -> Self:
        """The options of a throwaway local copy of this store (`drill restore --test-mode`)."""
        return type(self)()

    @classmethod
    def of(cls, store: StoreConfig) -> Self:
        """`store.options` as this kind's type (a store of another kind is a bug in the caller)."""
        if not isinstance(store.options, cls):
            raise KindError(f"store {store.name!r} is a {store.kind} store, not one with {cls.__name__}")
        return store.options


def _as_is(value: Any) -> Any:
    return value


# -- the declaration --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KindSpec:
    """Everything drill needs to know about a kind before it imports the kind's adapter."""

    kind: str  # the value of `kind` in drill.toml, e.g. "postgres"
    names: tuple[str, ...]  # how sentences name it: `Given the PostgreSQL store "userdb"`; names[0] is used in messages
    unit: str  # what a seed or "holds N" count counts, plural: "rows"
    part_label: str  # what one part of a fingerprint is: "table"
    # provision mode (local / container / live) -> "module:function" building a ready Store:
    # local and container take (config, cleanup, progress), live takes (config, cleanup).
    provisioners: Mapping[str, str]
    options: type[KindOptions] = KindOptions
    capabilities: frozenset[type] = frozenset()  # drill.stores.capabilities Protocols its stores implement
    unit_one: str = ""  # the singular of `unit` (default: `unit` without its trailing "s")
    live_url: bool = True  # a live store is reached through `url_env` (False: the kind's options locate it)
    # What `url_env` must hold: the URL schemes a live store accepts (empty: any, its provisioner checks) and an
    # example for messages. `drill check` checks the URL, so that `drill run` refuses a bad one before it starts.
    live_schemes: tuple[str, ...] = ()
    live_example: str = "a URL"
    # The path of that URL names a database (unless the `database` option does): `drill check` refuses one that is
    # not a plain name (drill.names), as the live provisioner does, before anything connects.
    live_url_database: bool = False
    # A live store can also be restored `into` a new target next to it; False (a Redis server holds no second
    # database) means only in place, and messages do not offer `into` as a way out.
    live_restore_into: bool = True
    # Its live provisioner takes `allow_missing=True`: an in-place `drill restore` then creates a store that no
    # longer exists, as a runbook does (PostgreSQL: dropdb, createdb, restore).
    live_creates_missing: bool = False
    extra: str = ""  # the pip extra that brings the packages its adapter needs: dr-drill[extra]
    steps: tuple[str, ...] = ()  # modules of sentences only this kind understands (pytest-bdd step modules)
    summary: str = ""  # one line for docs and `drill check`
    # "module:attribute" of the kind's reader of backups made outside drill (drill.stores.formats.FormatReader):
    # the formats production's own tools write, told apart by content and read through. "" when it reads none.
    formats: str = ""
    # "module:function" provisioning a local store on a server the run shares ([drill] shared_servers; the scenario
    # qualifies: drill.provision.sharing), with the same signature as a provisioner; empty: always its own server.
    shared_provisioner: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_-]*", self.kind):
            raise KindError(f"kind {self.kind!r}: a kind is lower-case letters, digits, '-' or '_'")
        if not self.names or not all(self.names):
            raise KindError(f"kind {self.kind!r} declares no name for sentences")
        unknown = set(self.provisioners) - set(PROVISION_MODES)
        if unknown or not self.provisioners:
            raise KindError(f"kind {self.kind!r}: provisioners must be some of {', '.join(PROVISION_MODES)}, "
                            f"found {', '.join(sorted(self.provisioners)) or 'none'}")
        if not self.unit_one:
            object.__setattr__(self, "unit_one", self.unit.removesuffix("s"))

    @property
    def display_name(self) -> str:
        return self.names[0]

    def has(self, capability: type) -> bool:
        return capability in self.capabilities

    def fingerprint(self, parts: dict[str, PartPrint], *, taken_at: float, extras: dict[str, Any] | None = None
                    ) -> Fingerprint:
        """A fingerprint labelled as this kind declares (its unit and part label)."""
        return Fingerprint(kind=self.kind, part_label=self.part_label, unit=self.unit, parts=parts,
                           extras=extras or {}, taken_at=taken_at)


# -- the registry -----------------------------------------------------------------------------------------

BUILT_IN = "drill.stores"  # drill's own kinds: the packages under drill/stores/


@dataclass
class _Found:
    kinds: dict[str, KindSpec] = field(default_factory=dict)
    by_name: dict[str, KindSpec] = field(default_factory=dict)  # sentence name -> kind
    origin: dict[str, str] = field(default_factory=dict)  # kind -> where it was declared (for clashes)

    def add(self, spec: KindSpec, origin: str) -> None:
        if spec.kind in self.kinds:
            raise KindError(f"store kind {spec.kind!r} is declared twice: by {self.origin[spec.kind]} and by {origin}")
        for name in spec.names:
            if name in self.by_name:
                raise KindError(f"the store name {name!r} in sentences is claimed by kind {self.by_name[name].kind!r} "
                                f"and by kind {spec.kind!r} ({origin})")
        self.kinds[spec.kind] = spec
        self.origin[spec.kind] = origin
        self.by_name.update(dict.fromkeys(spec.names, spec))


_lock = threading.Lock()
_found: _Found | None = None


def _load() -> _Found:
    global _found
    with _lock:
        if _found is None:
            _found = _discover()
        return _found


def reset() -> None:
    """Forget the kinds found (a test that installs a kind into the running interpreter)."""
    global _found
    with _lock:
        _found = None


def _declared(module_name: str) -> KindSpec:
    module = importlib.import_module(module_name)
    spec = vars(module).get("KIND")
    if not isinstance(spec, KindSpec):
        raise KindError(f"{module_name} is a folder of drill/stores/ but declares no `KIND = KindSpec(...)`")
    return spec


def _discover() -> _Found:
    found = _Found()
    package = importlib.import_module(BUILT_IN)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.ispkg:
            name = f"{BUILT_IN}.{info.name}"
            found.add(_declared(name), name)
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        origin = f"entry point {entry.name!r} of {entry.dist.name if entry.dist else 'an unknown distribution'}"
        try:
            spec = entry.load()
        except Exception as exc:
            raise KindError(f"the store kind of {origin} cannot be loaded ({entry.value}): {exc}") from None
        if not isinstance(spec, KindSpec):
            raise KindError(f"{origin} ({entry.value}) is not a KindSpec: point it at the module's `KIND`")
        if spec.kind != entry.name:
            raise KindError(f"{origin} names kind {entry.name!r} but declares kind {spec.kind!r}: make them equal")
        found.add(spec, origin)
    return found


def all_kinds() -> dict[str, KindSpec]:
    """Every known kind by its drill.toml name, drill's own first."""
    return dict(_load().kinds)


def find(kind: str) -> KindSpec | None:
    return _load().kinds.get(kind)


def spec(kind: str) -> KindSpec:
    """The declaration of a kind drill.toml or a store names (KindError with the known kinds if none)."""
    found = find(kind)
    if found is None:
        raise KindError(f"{kind!r} is not a store kind; one of: {', '.join(all_kinds())}")
    return found


def by_sentence_name(name: str) -> KindSpec:
    """The kind a sentence names (`PostgreSQL`, `Docker volume`, ...)."""
    found = _load().by_name.get(name)
    if found is None:
        raise KindError(f"{name!r} is not a store kind; one of: {', '.join(_load().by_name)}")
    return found


def step_modules() -> list[str]:
    """The modules of sentences the kinds bring (pytest-bdd step modules: the plugin registers them)."""
    return [module for spec in all_kinds().values() for module in spec.steps]


class KindTable(Mapping[str, str]):
    """A read-only table built from the kinds' declarations each time it is read (the old hand-kept tables,
    drill.stores.base.UNITS, KIND_NAMES, PART_LABELS and drill.config.STORE_KINDS, for code written against them)."""

    def __init__(self, build: Callable[[], dict[str, str]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> str:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


def _alternatives(words: list[str]) -> str:
    # Longest first, so that a name that starts another one ("GCS", "GCS bucket") never cuts it short.
    return "|".join(re.escape(w) for w in sorted(set(words), key=lambda w: (-len(w), w)))


def names_pattern() -> str:
    """The regex alternatives for the kinds' names in sentences (the vocabulary's `{KINDS}`)."""
    return _alternatives([n for s in all_kinds().values() for n in s.names])


def units_pattern() -> str:
    """The regex alternatives for every kind's unit, singular and plural (the vocabulary's `{UNITS}`)."""
    return _alternatives([u for s in all_kinds().values() for u in (s.unit, s.unit_one)])
