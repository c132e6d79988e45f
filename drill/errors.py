"""One root exception, specific subclasses; every message says what, where, and what to do."""

from __future__ import annotations

from pathlib import Path


class DrillError(Exception):
    """Root of every error drill raises on purpose (anything else is a bug)."""


class ConfigError(DrillError):
    """drill.toml is malformed or names something that is not allowed."""

    def __init__(self, message: str, *, path: Path | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.detail = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line else f"{path}: "
        key_part = f"[{key}] " if key else ""
        super().__init__(f"{where}{key_part}{message}")


class FeatureError(DrillError):
    """A .feature file cannot be parsed or uses a sentence/duration/store drill does not know."""

    def __init__(self, message: str, *, path: Path | str, line: int | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.detail = message
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


class UnsupportedStep(FeatureError):
    """A sentence asks a store for an ability its kind does not declare (drill.stores.capabilities).

    `drill check` reports it as a problem; `drill run` warns and runs the scenario, which then fails
    at that step with the same words."""


class DurationError(DrillError, ValueError):
    """A duration such as `30 minutes` or `1h30m` could not be read."""


class StoreError(DrillError):
    """A store operation (backup, restore, seed, fingerprint...) failed."""


class ProvisionError(DrillError):
    """A store could not be brought into existence (server did not start, tool missing)."""


class SafetyError(DrillError):
    """drill refused to touch something because its configuration does not allow it."""


class BackupError(DrillError):
    """A backup is missing, unreadable, corrupt or does not match its manifest."""


class VerificationError(DrillError, AssertionError):
    """A restored store does not match what it should hold.

    Subclasses AssertionError so pytest reports the scenario as failed, not errored.
    """


class TargetMissed(DrillError, AssertionError):
    """A measured RTO or RPO exceeded its target."""


class LiveStoreNotRestored(VerificationError):
    """A live store ended a scenario worse than it began (drill put it back, or could not): the scenario fails."""
